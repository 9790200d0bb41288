"""Sent marks committed one email behind the sending, without widening decision 12's bound.

`add` starts an accepted email's mark and returns at once. The sender calls `settled` just
before the next email's end of data, the one point after which the server has it, and
`settled` returns once that mark has committed. So the next email's MAIL, RCPT, DATA and
data go out while the mark commits, and at most one accepted email is ever unmarked, as
when every send waited for the previous mark; only the waiting moved (decision 37).

- **PostgreSQL** (`AsyncMarks`, decision 39): the mark goes out through libpq's
  asynchronous interface on a connection held for the run and `settled` reads its answer.
  One round trip, no thread, no wait for the GIL: moving the marks off a thread running
  them through SQLAlchemy took the mailer's CPU per email from 0.64 to 0.36 ms.
- **SQLite** (`ThreadMarks`): the mark runs on a thread of its own over one connection
  (`shared.db.statement_writer`), each in its own transaction.

Both write the same row: `status` sent, `sent_at`, the email's `message_id`, no lease, no
error; unconditionally, since the server has the message whoever holds the claim by now.
"""

import select
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.engine import Engine

from shared.db import Write, statement_writer
from shared.notification_tables import email_outbox

_O = email_outbox

# Built once: building the statement for every email cost more CPU than running it.
_MARK_SENT = (
    _O.update()
    .where(_O.c.id.in_(sa.bindparam("row_ids", expanding=True)))
    .values(
        status="sent",
        sent_at=sa.bindparam("sent_at"),
        message_id=sa.bindparam("sent_message_id"),
        lease_until=None,
        last_error=None,
    )
)
# The same mark as libpq takes it: numbered parameters, sent as text.
_MARK_SENT_SQL = (
    b"UPDATE email_outbox SET status = 'sent', sent_at = $1::timestamptz, message_id = $2,"
    b" lease_until = NULL, last_error = NULL WHERE id = ANY($3::bigint[])"
)


class MarkFailed(Exception):
    """The database did not take a sent mark: the email waiting for it must not go."""


class SentMarks(Protocol):
    def add(self, row_ids: Sequence[int], message_id: str, sent_at: datetime) -> None:
        """Start marking `row_ids` sent. Call `settled` first: marks never overlap a send's
        end of data, so one is never started before the last has committed."""

    def settled(self) -> None:
        """Return once the last mark has committed; raise if it did not."""

    def close(self) -> None:
        """Let go of the connection. Call `settled` first to learn the last mark's fate."""


def open_marks(engine: Engine) -> SentMarks:
    if engine.dialect.name == "postgresql":
        return AsyncMarks(engine)
    return ThreadMarks(engine)


class AsyncMarks:
    """PostgreSQL: each mark one asynchronous statement, outside any transaction block, so
    that it commits on its own (libpq's implicit transaction), its answer read later."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._raw: Any = None  # the pool's connection, taken on the first mark
        self._pending = False

    def add(self, row_ids: Sequence[int], message_id: str, sent_at: datetime) -> None:
        pgconn = self._connection()
        ids = "{" + ",".join(str(int(row_id)) for row_id in row_ids) + "}"
        params = [sent_at.isoformat().encode(), message_id.encode(), ids.encode()]
        try:
            pgconn.send_query_params(_MARK_SENT_SQL, params)
            self._pending = True
            while pgconn.flush():  # a non-blocking connection sends what its socket takes
                _wait(pgconn, select.POLLOUT)
        except Exception as exc:
            self._lose()
            raise MarkFailed(f"the sent mark did not reach the database: {exc}") from exc

    def settled(self) -> None:
        if not self._pending:
            return
        pgconn: pq.abc.PGconn = self._raw.driver_connection.pgconn
        try:
            pgconn.consume_input()
            while pgconn.is_busy():
                _wait(pgconn, select.POLLIN)
                pgconn.consume_input()
            errors = []
            while (result := pgconn.get_result()) is not None:
                if result.status != pq.ExecStatus.COMMAND_OK:
                    errors.append(result.error_message.decode(errors="replace").strip())
        except Exception as exc:
            self._lose()
            raise MarkFailed(f"the sent mark's outcome is unknown: {exc}") from exc
        self._pending = False
        if errors:
            raise MarkFailed(f"the database refused the sent mark: {errors[0]}")

    def close(self) -> None:
        if self._raw is None:
            return
        if self._pending:  # an outcome nobody read: the connection is not fit to reuse
            self._lose()
        else:
            self._raw.close()
            self._raw = None

    def _connection(self) -> pq.abc.PGconn:
        if self._raw is None:
            self._raw = self._engine.raw_connection()
        pgconn: pq.abc.PGconn = self._raw.driver_connection.pgconn
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            raise MarkFailed("the connection for sent marks is inside a transaction")
        return pgconn

    def _lose(self) -> None:
        """Drop the connection from the pool: its state is unknown."""
        if self._raw is not None:
            self._raw.invalidate()
            self._raw = None
        self._pending = False


def _wait(pgconn: pq.abc.PGconn, event: int) -> None:
    poll = select.poll()
    poll.register(pgconn.socket, event)
    poll.poll()


class ThreadMarks:
    """SQLite: each mark a transaction of its own on a thread, over one held connection."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-mark")
        self._held = ExitStack()  # the connection, opened and closed on the marks' thread
        self._write: Write | None = None
        self._last: Future[None] | None = None

    def add(self, row_ids: Sequence[int], message_id: str, sent_at: datetime) -> None:
        parameters = {"row_ids": row_ids, "sent_at": sent_at, "sent_message_id": message_id}
        self._last = self._thread.submit(self._run, parameters)

    def settled(self) -> None:
        if self._last is not None:
            self._last.result()

    def close(self) -> None:
        self._thread.submit(self._held.close)
        self._thread.shutdown(wait=True)

    def _run(self, parameters: dict[str, Any]) -> None:
        if self._write is None:
            self._write = self._held.enter_context(statement_writer(self._engine))
        self._write(_MARK_SENT, parameters)
