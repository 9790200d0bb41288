"""Retention: deleting idempotency keys and finished outbox rows once they have expired.

One run (`prune_expired`; the RQ job is `services.worker.jobs.prune`, queued by the
workers' maintenance pass) deletes expired rows in chunks of `CHUNK`, each in its own
short transaction, so no lock is held for long: on SQLite a chunk holds the write lock for
some milliseconds and the API's commits slip in between; on PostgreSQL it locks only the
rows it deletes (`FOR UPDATE SKIP LOCKED`: two runs at once never wait on each other). A
chunk finds its rows through an index range and deletes them by primary key: a
`DELETE ... WHERE id IN (SELECT ... LIMIT n)` would be planned by PostgreSQL as a scan of
the whole table, for every chunk. A run stops after `MAX_CHUNKS` chunks per table (and
outbox status) and says so (`more`): the job then queues another one behind whatever was
queued meanwhile.

**Idempotency keys** older than `CHORUS_IDEMPOTENCY_RETENTION_HOURS` (by `created_at`,
indexed). A key is answered for at least that long; a retry after it has been pruned runs
as a new request. Pruning never makes a replay wrong: a replay is only ever the stored
answer to the same fingerprint, and a key that is gone replays nothing.

**Outbox rows** whose status is final (`sent`, `skipped`, `failed`) and that were last due
more than `CHORUS_OUTBOX_RETENTION_DAYS` ago (the (status, due_at) index; a row's `due_at`
is when its last attempt fell due, so for nearly every row when it was sent or given up).
`pending` and `sending` rows are never touched. Deleting a finished row cannot cause a
second email:

- the mailer only claims `pending` rows and `sending` rows whose lease expired, and a
  finished row never goes back to either;
- a row is written only by the live notification fold, in the same transaction that moves
  the thread's notification checkpoint past the comment, and that checkpoint only moves
  forward: no fold meets the comment again to queue it anew. A rebuild refolds with email
  queueing off. So the unique (recipient, comment) constraint, which a pruned row no
  longer backs, is a second net that the live path never needs.

The rows deleted are added, per status, to `email_outbox_pruned` in the same transaction,
so the all-time totals (`rows + pruned`) that `/metrics` reports do not move.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from shared.db import write_transaction
from shared.notification_tables import FINISHED_STATUSES, email_outbox
from shared.retention_tables import email_outbox_pruned
from shared.settings import Settings
from shared.timeutil import as_utc
from shared.write_index import IdempotencyRecord

KEYS = IdempotencyRecord.__table__  # type: ignore[attr-defined]
CHUNK = 1000
MAX_CHUNKS = 100  # per table and run: 100,000 rows, then another job takes the rest


@dataclass(frozen=True)
class PruneSummary:
    idempotency_keys: int  # keys deleted
    outbox_rows: int  # finished outbox rows deleted
    more: bool  # the run stopped at its bound: expired rows are left for the next one


def prune_expired(
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    *,
    chunk: int = CHUNK,
    max_chunks: int = MAX_CHUNKS,
) -> PruneSummary:
    """One retention run as of `now`: expired keys, then expired finished outbox rows."""
    now = as_utc(now or datetime.now(UTC))
    keys_before = now - timedelta(hours=settings.idempotency_retention_hours)
    rows_before = now - timedelta(days=settings.outbox_retention_days)
    keys, more = _in_chunks(
        partial(prune_idempotency_keys, engine, keys_before, chunk), chunk, max_chunks
    )
    rows = 0
    for status in FINISHED_STATUSES:
        deleted, more_of_status = _in_chunks(
            partial(prune_outbox, engine, status, rows_before, chunk), chunk, max_chunks
        )
        rows, more = rows + deleted, more or more_of_status
    return PruneSummary(idempotency_keys=keys, outbox_rows=rows, more=more)


def prune_idempotency_keys(engine: Engine, before: datetime, limit: int) -> int:
    """Delete up to `limit` keys created before `before`, in one transaction."""
    with write_transaction(engine) as conn:
        expired = conn.execute(
            sa.select(KEYS.c.user_id, KEYS.c.key)
            .where(KEYS.c.created_at < before)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not expired:
            return 0
        primary_key = sa.tuple_(KEYS.c.user_id, KEYS.c.key)
        deleted = conn.execute(KEYS.delete().where(primary_key.in_([tuple(r) for r in expired])))
        return int(deleted.rowcount)


def prune_outbox(engine: Engine, status: str, before: datetime, limit: int) -> int:
    """Delete up to `limit` rows of the finished `status` last due before `before`, and
    count them as pruned, in one transaction."""
    if status not in FINISHED_STATUSES:
        raise ValueError(f"only finished rows are ever pruned, not {status!r}")
    outbox = email_outbox
    with write_transaction(engine) as conn:
        ids = (
            conn.execute(
                sa.select(outbox.c.id)
                .where(outbox.c.status == status, outbox.c.due_at < before)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if not ids:
            return 0
        deleted = int(conn.execute(outbox.delete().where(outbox.c.id.in_(ids))).rowcount)
        _count_pruned(conn, status, deleted)
        return deleted


def _count_pruned(conn: Connection, status: str, deleted: int) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(email_outbox_pruned).values(status=status, pruned_rows=deleted)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["status"],
            set_={"pruned_rows": email_outbox_pruned.c.pruned_rows + deleted},
        )
    )


def _in_chunks(delete_chunk: Callable[[], int], chunk: int, max_chunks: int) -> tuple[int, bool]:
    """Run `delete_chunk` until a chunk comes back short, at most `max_chunks` times."""
    total = 0
    for _ in range(max_chunks):
        deleted = delete_chunk()
        total += deleted
        if deleted < chunk:
            return total, False
    return total, True
