"""Group commit: the commands of many concurrent requests share one transaction and commit.

One committer thread per process takes whatever work is waiting, runs each piece in
turn inside one write transaction, commits once, and only then answers every caller.
Batching is natural: while one batch commits, the next one gathers, so a lone request
waits for no timer and a crowd shares its fsyncs and its lock.

No piece can fail another (decision 17):
- A refusal costs nothing extra: handlers check before they write, so a piece that is
  refused before any write leaves the transaction as it found it. A piece that fails
  after writing (or on a database error) rolls the whole transaction back; it is then
  answered (or retried, for a lost race) and the rest of the batch runs again in a new
  transaction. No caller is ever told "done" for work that was not committed.
- The shared step (`before_commit`, once per batch) runs for the pieces that succeeded;
  should it fail, the batch is rolled back and runs again with the step done piece by
  piece, so a failure is that one piece's.
- Work carries a deadline. A piece whose deadline passed before its batch starts is
  answered `Busy` without running, and the batch's waits are bounded by its earliest
  deadline (the append lock and each statement on PostgreSQL, the write lock on
  SQLite): a batch stuck behind a lock held elsewhere fails as a whole, nothing of it
  committed, and its expired pieces are answered `Busy`. A caller told `Busy` was told
  the truth.

On PostgreSQL the batch takes the global append lock (`lock_appends`) before it reads
anything, so every check in it sees the latest committed state and lock order is
always "append lock, then rows", the order `EventStore.append` keeps too.
"""

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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
# Called once a batch has committed and its callers are answered, with each successful
# piece's (tag, result), on the committer thread: it must hand slow work (I/O) elsewhere.
AfterCommit = Callable[[Sequence[tuple[Any, Any]]], None]

log = logging.getLogger(__name__)

_WRITES = "chorus_writes"
# Errors of one piece of work that a fresh attempt may not meet again.
_RETRYABLE = (ConcurrencyError, sa.exc.IntegrityError)
# Errors of the database itself: the whole batch fails with them (the API answers 503).
_OUTAGE = (sa.exc.OperationalError, sa.exc.InterfaceError)
# PostgreSQL's lock_not_available and query_canceled: a lock or statement timeout.
_TIMEOUT_SQLSTATES = frozenset({"55P03", "57014"})


@dataclass(eq=False)
class _Pending(Generic[T]):
    work: Work[T]
    tag: Any
    deadline: float | None  # time.monotonic(); None: wait as long as it takes
    future: Future[T] = field(default_factory=Future)
    # An awaiting caller's future and its event loop (`run_async`): woken per batch.
    waiter: "tuple[asyncio.AbstractEventLoop, asyncio.Future[T]] | None" = None
    result: T | None = None
    error: BaseException | None = None
    attempts: int = 0

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


class _Spoiled(Exception):
    """A piece failed after writing: the transaction must go, with or without it."""

    def __init__(self, pending: "_Pending[object]", cause: BaseException) -> None:
        super().__init__(str(cause))
        self.pending, self.cause = pending, cause


class _SharedStepFailed(Exception):
    """`before_commit` failed for the batch as a whole: which piece caused it is unknown."""


class GroupCommitter:
    """Runs `submit`ted work in shared transactions on one background thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 64,
        item_retries: int = 3,
        max_waiting: int | None = None,
        before_commit: BeforeCommit | None = None,
        after_commit: AfterCommit | None = None,
        on_lock_held: Callable[[float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_lock_held = on_lock_held  # seconds, once per transaction (metrics)
        self.max_batch = max_batch
        self.item_retries = item_retries
        self.max_waiting = max_waiting
        self.before_commit = before_commit
        self.after_commit = after_commit
        # Since start: batches committed, the pieces they answered, and how long batches
        # held the append lock (taken to commit or rollback; bench/append_lock.py reads it).
        self.batches = 0
        self.pieces = 0
        self.lock_held_seconds = 0.0
        self._queue: queue.SimpleQueue[_Pending[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        if not sa.event.contains(engine, "before_cursor_execute", _count_writes):
            sa.event.listen(engine, "before_cursor_execute", _count_writes)

    def submit(self, work: Work[T], tag: Any = None, *, timeout: float | None = None) -> Future[T]:
        """Queue `work(conn)` for the next batch; the future holds its result once that
        batch has committed.

        The future raises what `work` raised (nothing of it committed), the batch's error
        if the commit itself failed, or `Busy` if the work could not commit within
        `timeout` seconds (nothing of it committed either). With `max_waiting` pieces
        already queued, `Busy` is raised at once. `tag` goes to `before_commit` and
        `after_commit` if the work succeeds.
        """
        return self._enqueue(_Pending(work, tag, _deadline(timeout))).future

    async def run_async(self, work: Work[T], tag: Any = None, *, timeout: float | None = None) -> T:
        """`submit`, awaited on the running event loop: no thread waits for the commit.

        The committer wakes each event loop once per batch for all of its callers, not
        once per caller: handing a result to a loop costs a system call, and the committer
        thread is the one every write waits for.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        pending = self._enqueue(_Pending(work, tag, _deadline(timeout), waiter=(loop, waiter)))
        try:
            return await waiter
        except asyncio.CancelledError:
            pending.future.cancel()  # not in a batch yet: it will never run
            raise

    def _enqueue(self, pending: _Pending[T]) -> _Pending[T]:
        if self.max_waiting is not None and self._queue.qsize() >= self.max_waiting:
            raise Busy("too many writes are waiting; retry shortly")
        self._queue.put(pending)
        self._ensure_running()
        return pending

    def run(self, work: Work[T], tag: Any = None, *, timeout: float | None = None) -> T:
        """`submit`, and wait for the answer."""
        return self.submit(work, tag, timeout=timeout).result()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def close(self) -> None:
        """Finish what is queued and stop the thread (a later `submit` starts a new one)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        with self._lock:
            self._closed = False

    def _ensure_running(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._closed:
                return
            if self._thread is None or not self._thread.is_alive():
                self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="commit", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        batch: list[_Pending[Any]] = []
        try:
            while (gathered := self._gather()) is not None:
                batch = gathered
                try:
                    self._run(batch)
                finally:
                    _wake(batch)
                batch = []
        except BaseException as exc:
            # A fault escaped (a bug, or worse): whoever waits on what this thread held
            # hears of it, and a new thread takes over the queue.
            log.exception("the committer thread failed; starting a new one")
            for pending in batch:
                _answer(pending, error=exc)
            _wake(batch)
            with self._lock:
                if self._thread is threading.current_thread() and not self._closed:
                    self._start()

    def _gather(self) -> list[_Pending[Any]] | None:
        """The next batch (None once closed): what waits now, up to `max_batch`."""
        first = self._queue.get()
        if first is None:
            return None
        batch: list[_Pending[Any]] = []
        more: _Pending[Any] | None = first
        while more is not None:
            # From here on the caller can no longer cancel it (a client gone away).
            if more.future.set_running_or_notify_cancel():
                batch.append(more)
            if len(batch) >= self.max_batch:
                break
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)  # stop after this batch
        return batch

    def _run(self, batch: list[_Pending[Any]]) -> None:
        todo = batch
        per_piece = False  # run `before_commit` for each piece on its own
        while todo:
            todo = _refuse_expired(todo)
            if not todo:
                return
            try:
                retry = self._commit(todo, per_piece=per_piece)
            except _Spoiled as spoiled:
                # Everything else in `todo` was rolled back with it: run it again.
                culprit = spoiled.pending
                if not self._retry(culprit, spoiled.cause):
                    _answer(
                        culprit, error=spoiled.cause if culprit.error is None else culprit.error
                    )
                    todo = [p for p in todo if p is not culprit]
                continue
            except _SharedStepFailed as failed:
                log.warning("a batch's shared step failed, running it piece by piece: %s", failed)
                per_piece = True
                continue
            except BaseException as exc:  # the commit failed: nothing in it happened
                if _timed_out(exc) and any(p.expired(time.monotonic()) for p in todo):
                    continue  # the expired are answered Busy above; the rest run again
                error = _busy() if _timed_out(exc) else exc
                for pending in todo:
                    _answer(pending, error=error)
                return
            answered = [p for p in todo if p not in retry]
            self.batches += 1
            self.pieces += len(answered)
            for pending in answered:
                _answer(pending, result=pending.result, error=pending.error)
            self._after([(p.tag, p.result) for p in answered if p.error is None])
            todo = retry

    def _after(self, done: list[tuple[Any, Any]]) -> None:
        if self.after_commit is None or not done:
            return
        try:
            self.after_commit(done)
        except Exception:
            # Committed and answered already: a failing follow-up must not stop the committer.
            log.exception("after_commit failed")

    def _commit(self, batch: list[_Pending[Any]], *, per_piece: bool) -> list[_Pending[Any]]:
        """One transaction over `batch`; returns the pieces to run again in the next one."""
        retry: list[_Pending[Any]] = []
        within = _time_left(batch)
        with self._holding() as locked, write_transaction(self.engine, lock_wait=within) as conn:
            lock_appends(conn, within=within)
            locked()
            for pending in batch:
                pending.result, pending.error = None, None
                before = conn.info.get(_WRITES, 0)
                try:
                    pending.result = pending.work(conn)
                    if per_piece and self.before_commit is not None:
                        self.before_commit(conn, [pending.tag])
                except _OUTAGE:
                    raise  # the connection or the server failed (or timed out), not this piece
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
            done = [p.tag for p in batch if p.error is None and p not in retry]
            if self.before_commit is not None and not per_piece and done:
                try:
                    self.before_commit(conn, done)
                except _OUTAGE:
                    raise
                except Exception as exc:
                    raise _SharedStepFailed(str(exc)) from exc
        return retry

    @contextlib.contextmanager
    def _holding(self) -> Iterator[Callable[[], None]]:
        """Counts the time from the call it yields (the lock is taken) to the end of the
        transaction it encloses."""
        since: list[float] = []
        try:
            yield lambda: since.append(time.perf_counter())
        finally:
            if since:
                held = time.perf_counter() - since[0]
                self.lock_held_seconds += held
                if self.on_lock_held is not None:
                    try:
                        self.on_lock_held(held)
                    except Exception:  # a metric must not fail a write
                        log.exception("on_lock_held failed")

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


def _busy() -> Busy:
    return Busy("the database is busy and the write could not be made in time; retry shortly")


def _answer(
    pending: _Pending[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if pending.future.done():
        return
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(result)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _wake(batch: list[_Pending[Any]]) -> None:
    """Hand the answers of a batch's awaiting callers to their event loops: one call each."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Pending[Any]]] = {}
    for pending in batch:
        if pending.waiter is not None and pending.future.done():
            by_loop.setdefault(pending.waiter[0], []).append(pending)
    for loop, woken in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, woken)


def _settle(woken: list[_Pending[Any]]) -> None:
    """On the callers' event loop: pass each answer to the caller, unless it gave up."""
    for pending in woken:
        assert pending.waiter is not None
        waiter = pending.waiter[1]
        if waiter.done():
            continue
        error = pending.future.exception()
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(pending.future.result())


def _refuse_expired(batch: list[_Pending[Any]]) -> list[_Pending[Any]]:
    """Answer `Busy` to what can no longer be done in time (it never ran); the rest."""
    now = time.monotonic()
    for pending in batch:
        if pending.expired(now):
            _answer(pending, error=_busy())
    return [p for p in batch if not p.expired(now)]


def _time_left(batch: list[_Pending[Any]]) -> float | None:
    """Seconds until the batch's earliest deadline (rounded up to whole milliseconds, so
    that a wait cut short there has seen it pass); None if no piece has one."""
    deadlines = [p.deadline for p in batch if p.deadline is not None]
    if not deadlines:
        return None
    return max(0.001, math.ceil((min(deadlines) - time.monotonic()) * 1000 + 1) / 1000)


def _timed_out(exc: BaseException) -> bool:
    """A lock or statement timeout: the transaction is gone, nothing of it committed."""
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    orig = exc.orig
    return (
        getattr(orig, "sqlstate", None) in _TIMEOUT_SQLSTATES
        or getattr(orig, "sqlite_errorname", None) == "SQLITE_BUSY"
    )


def _count_writes(
    conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
) -> None:
    """Note every statement that may write, so a failed piece knows if it left a trace."""
    if statement.lstrip()[:6].upper() != "SELECT":
        conn.info[_WRITES] = conn.info.get(_WRITES, 0) + 1
