"""The mailer: claims due `email_outbox` rows, sends them over SMTP, marks them sent.

One run (`send_due_emails`; the RQ job is `services.worker.jobs.send_due_emails`):

1. **Claim**, in one short transaction: rows that are `pending` and due, or `sending` with
   an expired lease (a mailer died holding them), become `sending` with
   `lease_until = now + CHORUS_MAIL_LEASE_SECONDS`. PostgreSQL selects them `FOR UPDATE
   SKIP LOCKED`, so concurrent mailers never claim the same row; SQLite writers are
   serialized (`BEGIN IMMEDIATE`). Each row gets its email's Message-ID at its first
   claim and keeps it for every later attempt: an immediate row is one email, a
   recipient's due hourly/daily rows are one digest together.
2. **Send** over one SMTP connection per run, outside any transaction.
3. **Mark** each email's rows `sent` (`sent_at`, `message_id`) in a short transaction of
   its own, right after the server accepted it. No address, or emails turned off since
   the row was queued: `skipped`. Refused, or the server is down: back to `pending` with
   `attempts + 1`, due again after a backoff (30 s, doubling, at most an hour); after
   `CHORUS_MAIL_MAX_ATTEMPTS` attempts, `failed`.

Steps 2 and 3 overlap, one email deep (`mail_marks`, decisions 37 and 39): an email's
mark commits (on PostgreSQL sent asynchronously, on SQLite on a thread) while the next
email's MAIL, RCPT, DATA and data go out, and that next email's end of data (the lone "."
after which the server has it) waits until the mark has committed. The server accepts
nothing before its end of data, so at every moment at most one accepted email is
unmarked, as when each send waited for the previous mark. If the mark fails, the waiting
email is abandoned unsent (its connection dropped) and the error propagates.

**Delivery guarantee.** A row is handed to SMTP only while this run holds its claim, and
is marked right after the server accepts it, before the server can accept the next. The
one window for a duplicate: the server accepted the message and the mailer did not
record it (the process died or lost the database between the server's "250 OK" and the
mark, or the server's answer was lost).
When the lease expires the row is claimed and sent again, **with the same Message-ID**,
so mail clients collapse the copies: at most one duplicate per such crash, and never
more than `CHORUS_MAIL_MAX_ATTEMPTS` deliveries in all, since reclaiming an expired lease
counts as an attempt. A slow run cannot outlive its claim and race the next mailer: after
half the lease it stops sending and hands its remaining rows back unsent.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.worker.email_messages import (
    digest_message_id,
    notification_message_id,
    public_host,
)
from services.worker.mail_compose import Claim, Outgoing, compose
from services.worker.mail_marks import SentMarks, open_marks
from services.worker.smtp_sender import SendError, open_sender
from shared.db import read_connection, write_transaction
from shared.notification_tables import email_outbox
from shared.settings import Settings
from shared.timeutil import as_utc

log = logging.getLogger(__name__)

BASE_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
_O = email_outbox


@dataclass
class MailSummary:
    claimed: int = 0  # outbox rows this run claimed
    emails_sent: int = 0
    rows_sent: int = 0
    skipped: int = 0
    retried: int = 0  # rows put back for a later attempt
    failed: int = 0  # rows given up on
    released: int = 0  # rows handed back unsent: the run used up half its lease


def send_due_emails(engine: Engine, settings: Settings, now: datetime | None = None) -> MailSummary:
    """One mailer run: claim what is due at `now`, send it, mark it."""
    now = as_utc(now or datetime.now(UTC))
    started = time.monotonic()
    claims, exhausted = claim_due(engine, settings, now)
    summary = MailSummary(claimed=sum(len(c.row_ids) for c in claims), failed=exhausted)
    if not claims:
        return summary
    outgoing = compose(engine, claims, settings, now)
    summary.skipped = mark_skipped(engine, [m for m in outgoing if m.skip_reason is not None])
    sender = open_sender(settings.smtp_url)
    marks = open_marks(engine)
    try:
        for mail in outgoing:
            if mail.skip_reason is not None:
                continue  # marked above
            if mail.error is not None or mail.message is None:
                _count_failure(summary, engine, mail, mail.error or "no message", now, settings)
            elif time.monotonic() - started > settings.mail_lease_seconds / 2:
                summary.released += release(engine, mail)
            else:
                try:
                    # The previous email's mark commits while this one's data goes out;
                    # this one's end of data waits for it (the duplicate bound, above).
                    sender.send(mail.message, before_end=marks.settled)
                except SendError as exc:
                    _count_failure(summary, engine, mail, str(exc), now, settings)
                    continue
                mark_sent(marks, mail, now)
                summary.emails_sent += 1
                summary.rows_sent += len(mail.row_ids)
        marks.settled()
    finally:
        marks.close()
        sender.close()
    log.info("mailer run: %s", summary)
    return summary


def claim_due(engine: Engine, settings: Settings, now: datetime) -> tuple[list[Claim], int]:
    """Claim due rows grouped by the email they go out in; also how many were given up."""
    lease_until = now + timedelta(seconds=settings.mail_lease_seconds)
    due = sa.or_(
        sa.and_(_O.c.status == "pending", _O.c.due_at <= now),
        sa.and_(_O.c.status == "sending", _O.c.lease_until < now),
    )
    columns = (
        _O.c.id,
        _O.c.recipient_id,
        _O.c.comment_id,
        _O.c.frequency,
        _O.c.status,
        _O.c.attempts,
        _O.c.message_id,
    )
    with read_connection(engine) as conn:
        # Most runs find nothing: answer them without taking SQLite's write lock.
        if conn.execute(sa.select(_O.c.id).where(due).limit(1)).first() is None:
            return [], 0
    with write_transaction(engine) as conn:
        rows: list[Any] = list(
            conn.execute(
                sa.select(*columns)
                .where(due)
                .order_by(_O.c.due_at, _O.c.id)
                .limit(settings.mail_batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        # An email claimed before goes out again whole: take the rest of its rows too.
        earlier = {r.message_id for r in rows} - {None}
        if earlier:
            seen = {r.id for r in rows}
            more = conn.execute(
                sa.select(*columns)
                .where(due, _O.c.message_id.in_(earlier))
                .with_for_update(skip_locked=True)
            )
            rows += [r for r in more if r.id not in seen]
        # An expired lease is an attempt that ended without an outcome: a crash.
        attempts = {r.id: r.attempts + (1 if r.status == "sending" else 0) for r in rows}
        exhausted = {r.id for r in rows if attempts[r.id] >= settings.mail_max_attempts}
        if exhausted:
            conn.execute(
                _O.update()
                .where(_O.c.id.in_(exhausted))
                .values(
                    status="failed",
                    lease_until=None,
                    attempts=settings.mail_max_attempts,
                    last_error="the mailer stopped while sending this too many times",
                )
            )
        rows = [r for r in rows if r.id not in exhausted]
        message_ids = _message_ids(rows, public_host(settings.public_url))
        if rows:
            conn.execute(
                _O.update()
                .where(_O.c.id == sa.bindparam("row_id"))
                .values(
                    status="sending",
                    lease_until=lease_until,
                    attempts=sa.bindparam("row_attempts"),
                    message_id=sa.bindparam("row_message_id"),
                ),
                [
                    {
                        "row_id": r.id,
                        "row_attempts": attempts[r.id],
                        "row_message_id": message_ids[r.id],
                    }
                    for r in rows
                ],
            )
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        groups[message_ids[row.id]].append(row)
    claims = [
        Claim(
            message_id=message_id,
            recipient_id=members[0].recipient_id,
            row_ids=tuple(r.id for r in members),
            digest=members[0].frequency != "immediate",
            attempts=max(attempts[r.id] for r in members),
            lease_until=lease_until,
        )
        for message_id, members in groups.items()
    ]
    return claims, len(exhausted)


def mark_sent(marks: SentMarks, mail: Outgoing, now: datetime) -> None:
    marks.add(mail.row_ids, mail.claim.message_id, now)


def mark_skipped(engine: Engine, mails: Sequence[Outgoing]) -> int:
    """Mark a run's skipped emails, one statement per reason in one transaction: nothing
    went out for them, so no duplicate bound rides on these marks (a crash before they
    commit only skips them again after the lease)."""
    groups: dict[tuple[str, datetime], list[int]] = defaultdict(list)
    for mail in mails:
        groups[mail.skip_reason or "", mail.claim.lease_until].extend(mail.row_ids)
    if not groups:
        return 0
    with write_transaction(engine) as conn:
        return sum(
            _update_rows(
                conn,
                row_ids,
                lease_until,
                status="skipped",
                lease_until=None,
                message_id=None,
                last_error=reason,
            )
            for (reason, lease_until), row_ids in groups.items()
        )


def release(engine: Engine, mail: Outgoing) -> int:
    """Hand rows back unsent, as they were before this claim (no attempt counted)."""
    return _update_claimed(engine, mail, status="pending", lease_until=None)


def record_failure(
    engine: Engine, mail: Outgoing, error: str, now: datetime, settings: Settings
) -> tuple[int, int]:
    """(rows to retry later, rows given up on) after a failed attempt."""
    attempts = mail.claim.attempts + 1
    if attempts >= settings.mail_max_attempts:
        gave_up = _update_claimed(
            engine, mail, status="failed", lease_until=None, attempts=attempts, last_error=error
        )
        log.warning("email %s failed for good: %s", mail.claim.message_id, error)
        return 0, gave_up
    delay = min(BASE_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    retried = _update_claimed(
        engine,
        mail,
        status="pending",
        lease_until=None,
        attempts=attempts,
        due_at=now + timedelta(seconds=delay),
        last_error=error,
    )
    log.warning("email %s not sent, retrying in %d s: %s", mail.claim.message_id, delay, error)
    return retried, 0


def _update_claimed(engine: Engine, mail: Outgoing, **values: Any) -> int:
    """Change rows only while this run's claim on them holds."""
    with write_transaction(engine) as conn:
        return _update_rows(conn, mail.row_ids, mail.claim.lease_until, **values)


def _update_rows(
    conn: Connection, row_ids: Sequence[int], claimed_until: datetime, **values: Any
) -> int:
    result = conn.execute(
        _O.update()
        .where(
            _O.c.id.in_(row_ids),
            _O.c.status == "sending",
            _O.c.lease_until == claimed_until,
        )
        .values(**values)
    )
    return int(result.rowcount)


def _count_failure(
    summary: MailSummary,
    engine: Engine,
    mail: Outgoing,
    error: str,
    now: datetime,
    settings: Settings,
) -> None:
    retried, gave_up = record_failure(engine, mail, error, now, settings)
    summary.retried += retried
    summary.failed += gave_up


def _message_ids(rows: list[Any], host: str) -> dict[int, str]:
    """Keep the Message-ID of an earlier claim; else one per immediate row, one per digest."""
    ids: dict[int, str] = {}
    digests: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.message_id is not None:
            ids[row.id] = row.message_id
        elif row.frequency == "immediate":
            ids[row.id] = notification_message_id(row.recipient_id, row.comment_id, host)
        else:
            digests[row.recipient_id].append(row)
    for recipient_id, members in digests.items():
        message_id = digest_message_id(recipient_id, [r.comment_id for r in members], host)
        ids.update((r.id, message_id) for r in members)
    return ids
