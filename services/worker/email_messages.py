"""Notification emails: one per notification, or one digest; text and HTML from templates.

Pure functions of their inputs (no database, no network), so they are tested without I/O.
Names and titles are the users' and the publication's own words: before they reach a
header they lose control characters (no CR/LF, so no header injection) and are bounded;
`mail_headers` encodes them (and would refuse a line break that got this far); in the HTML
part Jinja2 escapes them. The result is the message's bytes (`mail_wire.MailMessage`):
Python's `email` package, which parsed and refolded every header, was most of the
mailer's time.
"""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import format_datetime, parseaddr
from functools import cache
from typing import Any
from urllib.parse import quote, urldefrag, urlsplit

from jinja2 import Environment

from services.worker import mail_headers
from services.worker.mail_wire import MailMessage, alternative
from shared.templating import template_environment

MAX_NAME_CHARS = 80
MAX_TITLE_CHARS = 120
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Unicode's control characters (category Cc: C0, DEL, C1, which holds NEL) and the two
# other line breaks.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# An ASCII addr-spec of dot-atoms (RFC 5322 §3.4.1), as nearly every stored address is:
# `Address` would read it back unchanged, so it is split here without the parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)")

# kind -> (what the actor did, for a subject; the same inside a digest)
_PHRASES = {
    "reply": ("replied to your comment on", "replied to your comment"),
    "conversation": ("also commented in a conversation on", "also commented in the conversation"),
    "thread": ("commented on", "commented"),
}


@dataclass(frozen=True)
class MailItem:
    """One notification, with what the email says about its thread."""

    comment_id: str
    kind: str  # reply | conversation | thread
    thread_id: str
    thread_title: str | None
    thread_url: str | None
    actor_name: str
    excerpt: str
    created_at: datetime


@dataclass(frozen=True)
class Recipient:
    user_id: str
    name: str
    email: str


@dataclass(frozen=True)
class Envelope:
    """What every email carries besides its content."""

    mail_from: str
    public_url: str
    unsubscribe_url: str
    message_id: str
    date: datetime


def header_text(value: str, limit: int) -> str:
    """A single line of at most `limit` characters: no control characters, no line breaks."""
    cleaned = " ".join(_CONTROLS.sub(" ", value).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


class UnusableAddress(ValueError):
    """The recipient's stored email is not an address a message can go to."""


def recipient_address(name: str, email: str) -> Address | None:
    """The `To` address, or None when the stored email is not a usable address."""
    email = email.strip()
    if not email or "@" not in email or any(ch.isspace() or ord(ch) < 32 for ch in email):
        return None
    display_name = header_text(name, MAX_NAME_CHARS)
    plain = _DOT_ATOM_ADDRESS.fullmatch(email)
    if plain is not None:
        return Address(display_name=display_name, username=plain[1], domain=plain[2])
    return parsed_address(display_name, email)


def parsed_address(display_name: str, email: str) -> Address | None:
    """`email.headerregistry`'s reading of an address, or None when it has none."""
    try:
        address = Address(display_name=display_name, addr_spec=email)
    # AttributeError too: CPython's parser trips over some malformed ones (".@[").
    except (ValueError, IndexError, AttributeError, HeaderParseError):
        return None
    return address if address.domain and address.username else None


def public_host(public_url: str) -> str:
    return urlsplit(public_url).hostname or "localhost"


def notification_message_id(recipient_id: str, comment_id: str, host: str) -> str:
    """Stable: a resend of the same notification carries the same Message-ID."""
    return f"<chorus.{_digest(recipient_id)}.{_id_part(comment_id)}@{host}>"


def digest_message_id(recipient_id: str, comment_ids: Sequence[str], host: str) -> str:
    comments = _digest("\x00".join(sorted(comment_ids)))
    return f"<chorus.digest.{_digest(recipient_id)}.{comments}@{host}>"


def comment_link(item: MailItem, public_url: str) -> str:
    if item.thread_url:
        return f"{urldefrag(item.thread_url).url}#comment-{quote(item.comment_id, safe='')}"
    # No page of its own: Chorus's permalink page, the comment with its context, for a
    # person to read (services/api/routes/pages.py), not the API's JSON.
    return f"{public_url.rstrip('/')}/c/{quote(item.comment_id, safe='')}"


def thread_label(item: MailItem) -> str:
    title = header_text(item.thread_title or "", MAX_TITLE_CHARS)
    return f'"{title}"' if title else "a thread you follow"


def subject_for(item: MailItem) -> str:
    return f"{_actor(item)} {_phrase(item, 0)} {thread_label(item)}"


def digest_subject(items: Sequence[MailItem]) -> str:
    count = len(items)
    noun = "comment" if count == 1 else "comments"
    threads = {item.thread_id for item in items}
    if len(threads) == 1:
        return f"{count} new {noun} on {thread_label(items[0])}"
    return f"{count} new {noun} in {len(threads)} threads you follow"


def notification_email(item: MailItem, recipient: Recipient, envelope: Envelope) -> MailMessage:
    context = {
        "recipient_name": header_text(recipient.name, MAX_NAME_CHARS),
        "actor_name": _actor(item),
        "phrase": _phrase(item, 0),
        "thread_label": thread_label(item),
        "excerpt": item.excerpt,
        "link": comment_link(item, envelope.public_url),
        "unsubscribe_url": envelope.unsubscribe_url,
    }
    return _email(subject_for(item), "notification", context, recipient, envelope)


def digest_email(
    items: Sequence[MailItem], recipient: Recipient, envelope: Envelope
) -> MailMessage:
    """One email for many notifications, grouped by thread (threads in order of activity)."""
    ordered = sorted(items, key=lambda i: (i.created_at, i.comment_id))
    threads: dict[str, dict[str, Any]] = {}
    for item in ordered:
        thread = threads.setdefault(
            item.thread_id,
            {"label": thread_label(item), "url": item.thread_url, "entries": []},
        )
        thread["entries"].append(
            {
                "actor_name": _actor(item),
                "phrase": _phrase(item, 1),
                "excerpt": item.excerpt,
                "link": comment_link(item, envelope.public_url),
                "time": item.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            }
        )
    context = {
        "recipient_name": header_text(recipient.name, MAX_NAME_CHARS),
        "count": len(ordered),
        "threads": list(threads.values()),
        "unsubscribe_url": envelope.unsubscribe_url,
    }
    return _email(digest_subject(ordered), "digest", context, recipient, envelope)


def _email(
    subject: str,
    template: str,
    context: dict[str, Any],
    recipient: Recipient,
    envelope: Envelope,
) -> MailMessage:
    to = recipient_address(recipient.name, recipient.email)
    if to is None:
        raise UnusableAddress(f"not a usable email address for {recipient.user_id!r}")
    sender, from_header = _from(envelope.mail_from)
    env = _environment()
    headers = b"".join(
        [
            mail_headers.unstructured("Subject", header_text(subject, 250)),
            from_header,
            mail_headers.mailbox("To", to.display_name, to.addr_spec),
            mail_headers.raw("Date", format_datetime(envelope.date)),
            mail_headers.raw("Message-ID", envelope.message_id),
            # Raw: refolding a long URL would turn it into encoded words no client follows.
            mail_headers.raw("List-Unsubscribe", f"<{envelope.unsubscribe_url}>"),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"Auto-Submitted: auto-generated\r\n",  # RFC 3834: no vacation auto-replies
        ]
    )
    data = alternative(
        headers,
        env.get_template(f"{template}.txt.j2").render(context),
        env.get_template(f"{template}.html.j2").render(context),
    )
    return MailMessage(envelope.message_id, sender, to.addr_spec, data)


@cache
def _from(mail_from: str) -> tuple[str, bytes]:
    """CHORUS_MAIL_FROM's address (for MAIL FROM) and its From header, made once."""
    name, address = parseaddr(mail_from)
    if not address:
        raise ValueError("CHORUS_MAIL_FROM holds no address")
    return address, mail_headers.mailbox("From", header_text(name, MAX_NAME_CHARS), address)


@cache
def _environment() -> Environment:
    # Templates ship with the code: no stat of their files for every email.
    return template_environment(
        "services.worker",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _actor(item: MailItem) -> str:
    return header_text(item.actor_name, MAX_NAME_CHARS) or "Someone"


def _phrase(item: MailItem, which: int) -> str:
    return _PHRASES.get(item.kind, _PHRASES["thread"])[which]


def _id_part(value: str) -> str:
    return value if _SAFE_ID.fullmatch(value) else _digest(value)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:20]
