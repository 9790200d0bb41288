"""What each claimed email becomes: the message to send, or a reason to skip its rows.

Reads, for the claimed outbox rows, their notifications, the threads' titles and urls
(`thread_view`), the recipients' names and addresses (`people`) and their current email
preference: someone who unsubscribed after a row was queued gets no more mail.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.email_messages import (
    Envelope,
    MailItem,
    Recipient,
    UnusableAddress,
    digest_email,
    notification_email,
)
from services.worker.mail_wire import MailMessage
from shared.db import read_connection
from shared.notification_tables import email_outbox, notifications, people, user_preferences
from shared.projection_tables import LIVE
from shared.settings import Settings
from shared.timeutil import as_utc
from shared.unsubscribe import make_token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """Outbox rows claimed together to go out as one email."""

    message_id: str
    recipient_id: str
    row_ids: tuple[int, ...]
    digest: bool
    attempts: int  # the most any of its rows has had
    lease_until: datetime


@dataclass(frozen=True)
class Outgoing:
    """Rows of a claim and what to do with them: send `message`, skip them, or retry later
    (`error`: the email could not even be built)."""

    claim: Claim
    row_ids: tuple[int, ...]
    message: MailMessage | None
    skip_reason: str | None = None
    error: str | None = None


def unsubscribe_url(settings: Settings, user_id: str) -> str:
    token = make_token(settings.jwt_secret, user_id)
    return f"{settings.public_url.rstrip('/')}/v1/unsubscribe?token={token}"


def compose(
    engine: Engine, claims: Sequence[Claim], settings: Settings, now: datetime
) -> list[Outgoing]:
    details = _details(engine, [row_id for claim in claims for row_id in claim.row_ids])
    outgoing: list[Outgoing] = []
    for claim in claims:
        rows = [details[row_id] for row_id in claim.row_ids if row_id in details]
        orphans = tuple(r.id for r in rows if r.kind is None)
        if orphans:
            outgoing.append(Outgoing(claim, orphans, None, "the notification no longer exists"))
        rows = [r for r in rows if r.kind is not None]
        # Their author was erased (decision 33): nothing of theirs is quoted to anyone.
        erased = tuple(r.id for r in rows if r.actor_name == "" and r.excerpt == "")
        if erased:
            outgoing.append(Outgoing(claim, erased, None, "the comment's author was erased"))
        rows = [r for r in rows if r.id not in erased]
        if not rows:
            continue
        try:
            outgoing.append(_outgoing(claim, rows, settings, now))
        except Exception as exc:  # one bad row must not hold up everyone else's mail
            log.exception("cannot compose the email %s", claim.message_id)
            error = f"cannot compose the email: {type(exc).__name__}: {exc}"
            outgoing.append(Outgoing(claim, tuple(r.id for r in rows), None, error=error))
    return outgoing


def _outgoing(claim: Claim, rows: list[Any], settings: Settings, now: datetime) -> Outgoing:
    ids = tuple(r.id for r in rows)
    person = rows[0]
    if person.email_frequency == "off":
        return Outgoing(claim, ids, None, "emails are turned off")
    name = person.person_name or claim.recipient_id
    if not person.email:
        return Outgoing(claim, ids, None, "no email address")
    recipient = Recipient(claim.recipient_id, name, person.email)
    envelope = Envelope(
        mail_from=settings.mail_from,
        public_url=settings.public_url,
        unsubscribe_url=unsubscribe_url(settings, claim.recipient_id),
        message_id=claim.message_id,
        date=now,
    )
    items = [_item(r) for r in rows]
    try:
        if claim.digest:
            return Outgoing(claim, ids, digest_email(items, recipient, envelope))
        return Outgoing(claim, ids, notification_email(items[0], recipient, envelope))
    except UnusableAddress:
        return Outgoing(claim, ids, None, "no email address")


def _item(row: Any) -> MailItem:
    return MailItem(
        comment_id=row.comment_id,
        kind=row.kind,
        thread_id=row.thread_id,
        thread_title=row.title,
        thread_url=row.url,
        actor_name=row.actor_name,
        excerpt=row.excerpt,
        created_at=as_utc(row.created_at),
    )


def _details(engine: Engine, row_ids: list[int]) -> dict[int, Any]:
    o, n, t, p, up = email_outbox, notifications, LIVE.threads, people, user_preferences
    query = (
        sa.select(
            o.c.id,
            o.c.comment_id,
            n.c.kind,
            n.c.thread_id,
            n.c.actor_name,
            n.c.excerpt,
            n.c.created_at,
            t.c.title,
            t.c.url,
            p.c.name.label("person_name"),
            p.c.email,
            up.c.email_frequency,
        )
        .select_from(o)
        .outerjoin(
            n, sa.and_(n.c.recipient_id == o.c.recipient_id, n.c.comment_id == o.c.comment_id)
        )
        .outerjoin(t, t.c.thread_id == n.c.thread_id)
        .outerjoin(p, p.c.user_id == o.c.recipient_id)
        .outerjoin(up, up.c.user_id == o.c.recipient_id)
        .where(o.c.id.in_(row_ids))
    )
    with read_connection(engine) as conn:
        return {row.id: row for row in conn.execute(query)}
