"""Group commit: the commands of many concurrent requests share one transaction and commit.

One committer thread per process takes whatever work is waiting, runs each piece in
turn inside one write transaction, commits once, and only then answers every caller.
Batching is natural: while one batch commits, the next one gathers, so a lone request
waits for no timer and a crowd shares its fsyncs and its lock.

A refusal costs nothing extra: handlers check before they write, so a piece that is
refused before any write leaves the transaction as it found it. A piece that fails
after writing (or on a database error) rolls the whole transaction back; it is then
answered (or retried, for a lost race) and the rest of the batch runs again in a new
transaction. No caller is ever told "done" for work that was not committed.

On PostgreSQL the batch takes the global append lock (`lock_appends`) before it reads
anything, so every check in it sees the latest committed state and lock order is
always "append lock, then rows", the order `EventStore.append` keeps too.
"""

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.db import write_transaction
from shared.errors import Busy, ChorusError, ConcurrencyError
from shared.store import lock_appends

T = TypeVar("T")
Work = Callable[[Connection], T]
# Called inside each batch's transaction, just before it commits, with the tags of the
# pieces that succeeded: one statement for the whole batch instead of one per piece.
BeforeCommit = Callable[[Connection, Sequence[Any]], None]
# Called once a batch has committed, before its callers are answered, with each successful
# piece's (tag, result): what should follow a commit, done once per batch.
AfterCommit = Callable[[Sequence[tuple[Any, Any]]], None]

log = logging.getLogger(__name__)

_WRITES = "chorus_writes"
# Errors of one piece of work that a fresh attempt may not meet again.
_RETRYABLE = (ConcurrencyError, sa.exc.IntegrityError)
# Errors of the database itself: the whole batch fails with them (the API answers 503).
_OUTAGE = (sa.exc.OperationalError, sa.exc.InterfaceError)


@dataclass(eq=False)
class _Pending(Generic[T]):
    work: Work[T]
    tag: Any
    future: Future[T] = field(default_factory=Future)
    result: T | None = None
    error: BaseException | None = None
    attempts: int = 0


class _Spoiled(Exception):
    """A piece failed after writing: the transaction must go, with or without it."""

    def __init__(self, pending: "_Pending[object]", cause: BaseException) -> None:
        super().__init__(str(cause))
        self.pending, self.cause = pending, cause


class GroupCommitter:
    """Runs `submit`ted work in shared transactions on one background thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 64,
        item_retries: int = 3,
        before_commit: BeforeCommit | None = None,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.item_retries = item_retries
        self.before_commit = before_commit
        self.after_commit = after_commit
        self.batches = 0
        self._queue: queue.SimpleQueue[_Pending[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if not sa.event.contains(engine, "before_cursor_execute", _count_writes):
            sa.event.listen(engine, "before_cursor_execute", _count_writes)

    def submit(self, work: Work[T], tag: Any = None) -> T:
        """Run `work(conn)` in the next batch; return its result once that batch commits.

        Raises what `work` raised (nothing of it committed), or the batch's error if the
        commit itself failed. `tag` goes to `before_commit` and `after_commit` if the work
        succeeds.
        """
        pending: _Pending[T] = _Pending(work, tag)
        self._ensure_running()
        self._queue.put(pending)
        return pending.future.result()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_running(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="commit", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._run(batch)

    def _run(self, batch: list[_Pending[Any]]) -> None:
        todo = batch
        while todo:
            try:
                retry = self._commit(todo)
            except _Spoiled as spoiled:
                # Everything else in `todo` was rolled back with it: run it again.
                culprit = spoiled.pending
                if not self._retry(culprit, spoiled.cause):
                    culprit.future.set_exception(
                        spoiled.cause if culprit.error is None else culprit.error
                    )
                    todo = [p for p in todo if p is not culprit]
                continue
            except BaseException as exc:  # the commit failed: nothing in it happened
                for pending in todo:
                    pending.future.set_exception(exc)
                return
            self.batches += 1
            answered = [p for p in todo if p not in retry]
            # Before answering: when a caller hears "done", what follows the commit is done too.
            self._after([(p.tag, p.result) for p in answered if p.error is None])
            for pending in answered:
                if pending.error is not None:
                    pending.future.set_exception(pending.error)
                else:
                    pending.future.set_result(pending.result)
            todo = retry

    def _after(self, done: list[tuple[Any, Any]]) -> None:
        if self.after_commit is None or not done:
            return
        try:
            self.after_commit(done)
        except Exception:
            # Committed and answered already: a failing follow-up must not stop the committer.
            log.exception("after_commit failed")

    def _commit(self, batch: list[_Pending[Any]]) -> list[_Pending[Any]]:
        """One transaction over `batch`; returns the pieces to run again in the next one."""
        retry: list[_Pending[Any]] = []
        with write_transaction(self.engine) as conn:
            lock_appends(conn)
            for pending in batch:
                pending.result, pending.error = None, None
                before = conn.info.get(_WRITES, 0)
                try:
                    pending.result = pending.work(conn)
                except _OUTAGE:
                    raise  # the connection or the server failed, not this piece of work
                except Exception as exc:
                    if conn.info.get(_WRITES, 0) != before or isinstance(exc, sa.exc.DBAPIError):
                        raise _Spoiled(pending, exc) from exc
                    if isinstance(exc, ConcurrencyError):
                        if self._retry(pending, exc):
                            retry.append(pending)
                    elif isinstance(exc, ChorusError):
                        pending.error = exc  # a refusal, decided before any write
                    else:
                        log.exception("a command failed before writing")
                        pending.error = exc
            if self.before_commit is not None:
                done = [p.tag for p in batch if p.error is None and p not in retry]
                if done:
                    self.before_commit(conn, done)
        return retry

    def _retry(self, pending: _Pending[Any], exc: BaseException) -> bool:
        """Count an attempt; True if `pending` should run again, else give it its error."""
        if not isinstance(exc, _RETRYABLE):
            pending.error = exc
            return False
        pending.attempts += 1
        if pending.attempts < self.item_retries:
            return True
        log.warning("giving up on a command after %d attempts: %s", pending.attempts, exc)
        pending.error = Busy("too many concurrent writes to this thread; retry shortly")
        return False


def _count_writes(
    conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
) -> None:
    """Note every statement that may write, so a failed piece knows if it left a trace."""
    if statement.lstrip()[:6].upper() != "SELECT":
        conn.info[_WRITES] = conn.info.get(_WRITES, 0) + 1
