"""Building notification emails: subjects, links, headers, escaping. No I/O."""

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.worker.email_messages import (
    MAX_NAME_CHARS,
    Envelope,
    MailItem,
    Recipient,
    comment_link,
    digest_email,
    digest_message_id,
    header_text,
    notification_email,
    notification_message_id,
    parsed_address,
    recipient_address,
    subject_for,
)
from services.worker.mail_wire import MailMessage

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PUBLIC = "https://comments.example.org"
UNSUBSCRIBE = f"{PUBLIC}/v1/unsubscribe?token=" + "x" * 120 + ".sig"
ANN = Recipient("ann", "Ann Lee", "ann@example.com")


def item(
    kind: str = "reply",
    *,
    comment_id: str = "01jd0000000000000000000001",
    thread_id: str = "t1",
    title: str | None = "South Korea and the POWs",
    url: str | None = "https://news.example/p/korea",
    actor: str = "Don",
    excerpt: str = "I was there.",
    at: datetime = AT,
) -> MailItem:
    return MailItem(comment_id, kind, thread_id, title, url, actor, excerpt, at)


def envelope(message_id: str = "<chorus.test@comments.example.org>") -> Envelope:
    return Envelope("Chorus <comments@example.org>", PUBLIC, UNSUBSCRIBE, message_id, AT)


def wire(message: MailMessage) -> EmailMessage:
    """What the recipient's mail client parses."""
    parsed = message_from_bytes(message.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("reply", 'Don replied to your comment on "South Korea and the POWs"'),
        ("conversation", 'Don also commented in a conversation on "South Korea and the POWs"'),
        ("thread", 'Don commented on "South Korea and the POWs"'),
    ],
)
def test_the_subject_says_who_did_what_where(kind: str, subject: str) -> None:
    assert subject_for(item(kind)) == subject


def test_an_untitled_thread_is_named_generically() -> None:
    assert subject_for(item(title=None)) == "Don replied to your comment on a thread you follow"
    assert subject_for(item(title="  ")) == "Don replied to your comment on a thread you follow"


def test_the_link_is_the_threads_url_with_the_comment_anchor() -> None:
    assert comment_link(item(), PUBLIC) == (
        "https://news.example/p/korea#comment-01jd0000000000000000000001"
    )
    replaced = item(url="https://news.example/p/korea?x=1#comments")
    assert comment_link(replaced, PUBLIC).endswith("?x=1#comment-01jd0000000000000000000001")
    assert comment_link(item(url=None), PUBLIC + "/") == f"{PUBLIC}/c/01jd0000000000000000000001"


def test_a_notification_email_has_both_parts_and_one_click_unsubscribe() -> None:
    message = wire(notification_email(item(), ANN, envelope()))

    assert message["To"] == "Ann Lee <ann@example.com>"
    assert message["From"] == "Chorus <comments@example.org>"
    assert message["Message-ID"] == "<chorus.test@comments.example.org>"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"  # long, yet not encoded
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    for body in bodies(message):
        assert "I was there." in body
        assert "https://news.example/p/korea#comment-01jd0000000000000000000001" in body
        assert UNSUBSCRIBE in body


def test_user_text_is_escaped_in_html_and_kept_in_text() -> None:
    evil = item(actor="<b>Don</b>", title="<script>x()</script>", excerpt="a <img src=x> & b")

    text, html = bodies(wire(notification_email(evil, ANN, envelope())))

    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;b&gt;Don&lt;/b&gt;" in html
    assert "a &lt;img src=x&gt; &amp; b" in html
    assert "a <img src=x> & b" in text


def test_line_breaks_in_names_and_titles_cannot_add_headers() -> None:
    sneaky = item(actor="Don\r\nBcc: evil@example.com", title="T\nX-Injected: 1\u2028")
    recipient = Recipient("ann", "Ann\r\nCc: evil@example.com", "ann@example.com")

    message = wire(notification_email(sneaky, recipient, envelope()))

    assert message["Bcc"] is None
    assert message["Cc"] is None
    assert message["X-Injected"] is None
    assert (  # folded onto a continuation line by the email package; unfolded here
        message["Subject"].strip()
        == 'Don Bcc: evil@example.com replied to your comment on "T X-Injected: 1"'
    )
    assert message["To"].addresses[0].addr_spec == "ann@example.com"


def test_header_text_is_one_bounded_line() -> None:
    assert header_text("a\r\n\tb\x00c\u2029d", 100) == "a b c d"
    assert header_text("x" * 50, 10) == "x" * 9 + "…"


@pytest.mark.parametrize(
    "email",
    ["", "   ", "no-at-sign", "a b@example.com", "ann@example.com\r\nBcc: x@y", "@", ".@["],
)
def test_unusable_addresses_are_refused(email: str) -> None:
    assert recipient_address("Ann", email) is None


# Dot-separated words, some empty, some with specials: plain atoms and near misses.
_NEAR_MISS = st.text(alphabet='aZé"\\()<>[]:;,+_!', max_size=3)


def _dotted(atom: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(atom, atom, atom, _NEAR_MISS), min_size=1, max_size=3).map(".".join)


_LOCAL_PART = _dotted(st.text(alphabet="aZ09-+_!~'", min_size=1, max_size=4))
_DOMAIN = _dotted(st.text(alphabet="aZ09-", min_size=1, max_size=4))


@given(
    st.one_of(
        st.builds("{}@{}".format, _LOCAL_PART, _DOMAIN),
        st.text(alphabet='ab.-+@"()<>[]é', min_size=1, max_size=20),
    ),
    st.text(max_size=12),
)
def test_an_address_reads_as_the_parser_reads_it(email: str, name: str) -> None:
    """Dot-atom addresses are split without `email.headerregistry`, to the same result."""
    assume("@" in email)
    ours = recipient_address(name, email)
    theirs = parsed_address(header_text(name, MAX_NAME_CHARS), email)
    assert ours == theirs
    assert (ours and ours.addr_spec) == (theirs and theirs.addr_spec)


def test_message_ids_are_stable_and_safe_for_any_user_id() -> None:
    first = notification_message_id("user with spaces/<>@", "c1", "example.org")
    assert first == notification_message_id("user with spaces/<>@", "c1", "example.org")
    assert first != notification_message_id("another user", "c1", "example.org")
    assert first.startswith("<chorus.")
    assert first.endswith(".c1@example.org>")
    assert " " not in first
    assert first.count("@") == 1
    assert digest_message_id("ann", ["c2", "c1"], "h") == digest_message_id(
        "ann", ["c1", "c2"], "h"
    )
    assert digest_message_id("ann", ["c1"], "h") != digest_message_id("ann", ["c1", "c2"], "h")


def test_a_digest_groups_notifications_by_thread_in_order_of_activity() -> None:
    items = [
        item(comment_id="c3", excerpt="third", at=AT + timedelta(minutes=3)),
        item(
            "thread",
            comment_id="c2",
            thread_id="t2",
            title="Budget day",
            url=None,
            actor="Eve",
            excerpt="second",
            at=AT + timedelta(minutes=2),
        ),
        item(comment_id="c1", excerpt="first", at=AT + timedelta(minutes=1)),
    ]

    message = wire(digest_email(items, ANN, envelope("<chorus.digest.x@h>")))

    assert message["Subject"] == "3 new comments in 2 threads you follow"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for body in bodies(message):
        assert body.index("first") < body.index("third") < body.index("Budget day")
        assert body.index("Budget day") < body.index("second")
        assert f"{PUBLIC}/c/c2" in body
        assert UNSUBSCRIBE in body


def test_a_digest_of_one_thread_names_it() -> None:
    message = wire(digest_email([item(comment_id="c1")], ANN, envelope()))
    assert message["Subject"] == '1 new comment on "South Korea and the POWs"'


def test_an_email_needs_a_usable_address() -> None:
    with pytest.raises(ValueError, match="not a usable email address"):
        notification_email(item(), Recipient("ann", "Ann", "not-an-address"), envelope())
