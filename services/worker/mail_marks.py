"""Sent marks committed one email behind the sending, without widening decision 12's bound.

`SentMarks` commits each accepted email's mark on a thread of its own, in order, over one
connection held for the mailer run (`shared.db.statement_writer`: on PostgreSQL one round
trip per mark), so that the next email's MAIL, RCPT, DATA and data go out meanwhile. The
sender calls `settled` just before that next email's end of data: the one point after
which the server has it. So at most one accepted email is ever unmarked, as when every
send waited for the previous mark; only the waiting moved.
"""

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Concatenate, ParamSpec

from sqlalchemy.engine import Engine

from shared.db import Write, statement_writer

P = ParamSpec("P")


class SentMarks:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-mark")
        self._held = ExitStack()  # the connection, opened and closed on the marks' thread
        self._write: Write | None = None
        self._last: Future[None] | None = None

    def add(
        self,
        mark: Callable[Concatenate[Write, P], object],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Start `mark(write, *args, **kwargs)`. Call `settled` first: marks never overlap
        a send's end of data, so one is never started before the last has committed."""
        self._last = self._thread.submit(self._run, lambda write: mark(write, *args, **kwargs))

    def settled(self) -> None:
        """Return once the last mark has committed; raise what it raised."""
        if self._last is not None:
            self._last.result()

    def close(self) -> None:
        """Wait for the last mark (its outcome is `settled`'s to report) and let go of the
        connection."""
        self._thread.submit(self._held.close)
        self._thread.shutdown(wait=True)

    def _run(self, mark: Callable[[Write], object]) -> None:
        if self._write is None:
            self._write = self._held.enter_context(statement_writer(self._engine))
        mark(self._write)
