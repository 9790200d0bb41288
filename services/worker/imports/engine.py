"""The import engine: a `Source` in, events and write-side rows out (decision 34).

Two passes over the source. The first reads it whole and counts, so that a malformed
file (`MalformedFile`) is refused before anything is appended, and the progress bar
knows its total. The second plans each thread (`plan`), gathers threads into batches of
about `batch_comments` comments, and writes each batch in one transaction (`writer`).

A thread is imported whole or not at all. A batch the database refuses is tried again
in halves until the thread at fault is alone: it is skipped and reported, and every
other thread of the batch is committed. Ids derive from the source (`ids`), so a second
run appends nothing and an interrupted run, run again, continues where it stopped.
Threads new to the log are folded in their batch's transaction (`fresh_fold`); their
bodies are rendered in a pool of processes while the batch before is written
(`rendering_pool`). After each committed batch `after_batch` gets the other threads it
wrote to, to fold them (`folds`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.imports import thread_events as te
from services.worker.imports.folds import AfterBatch, no_folds
from services.worker.imports.model import SkippedThread, Source, SourceThread
from services.worker.imports.plan import PlanRefused, ThreadPlan, plan_thread
from services.worker.imports.rendering_pool import Rendering, RenderPool
from services.worker.imports.report import ImportReport
from services.worker.imports.writer import ThreadOutcome, stream_versions, write_batch
from shared.db import write_transaction
from shared.errors import ConcurrencyError, Conflict
from shared.store import EventStore

DEFAULT_BATCH_COMMENTS = 5000
Progress = Callable[[int, int], None]  # (comments done, comments in the file)
# What the database refuses because of one thread's data; anything else (a lost
# connection, an interrupt) stops the import, which a second run continues.
_THREAD_FAULTS = (sa.exc.IntegrityError, sa.exc.DataError, Conflict, ConcurrencyError)


@dataclass(frozen=True)
class Counted:
    threads: int
    comments: int


def count(source: Source) -> Counted:
    """The first pass: read everything (raising `MalformedFile`), keep nothing."""
    threads = comments = 0
    for item in source.threads():
        threads += 1
        if isinstance(item, SourceThread):
            comments += len(item.comments) + len(item.skipped)
    return Counted(threads, comments)


class _DryRun(Exception):
    def __init__(self, outcomes: list[ThreadOutcome]) -> None:
        self.outcomes = outcomes


class Importer:
    def __init__(
        self,
        engine: Engine,
        source: Source,
        *,
        dry_run: bool = False,
        batch_comments: int = DEFAULT_BATCH_COMMENTS,
        after_batch: AfterBatch = no_folds,
        fold_new_threads: bool = True,
        render_processes: int = 0,
        progress: Progress | None = None,
    ) -> None:
        self.engine = engine
        self.store = EventStore(engine)
        self.source = source
        self.dry_run = dry_run
        self.batch_comments = batch_comments
        self.after_batch = after_batch
        self.fold_new_threads = fold_new_threads
        self.render_processes = render_processes
        self.pool: RenderPool | None = None
        self.progress = progress
        self.report = ImportReport(source.name, dry_run=dry_run)
        self.total = 0
        self.done = 0

    def run(self) -> ImportReport:
        if self.render_processes > 0 and self._folds:
            self.pool = RenderPool(self.render_processes)
        try:
            return self._run()
        finally:
            if self.pool is not None:
                self.pool.close()
                self.pool = None

    @property
    def _folds(self) -> bool:
        return self.fold_new_threads and not self.dry_run

    def _run(self) -> ImportReport:
        self.total = count(self.source).comments
        self._tick(0)
        batch: list[ThreadPlan] = []
        in_batch: set[str] = set()
        size = 0
        planned: tuple[list[ThreadPlan], Rendering] | None = None  # its bodies rendering
        for item in self.source.threads():
            plan = self._plan(item)
            if plan is None:
                continue
            # One thread id once per batch: two source threads may map to one Chorus thread
            # (the same identifier or URL twice); the second appends after the first.
            if batch and (size >= self.batch_comments or plan.thread_id in in_batch):
                # Batch N+1 starts rendering, then batch N is written.
                rendering = self._start_rendering(batch)
                if planned is not None:
                    self._write(*planned)
                planned = (batch, rendering)
                batch, in_batch, size = [], set(), 0
            batch.append(plan)
            in_batch.add(plan.thread_id)
            size += len(plan.comments) + 1
        last = (batch, self._start_rendering(batch)) if batch else None
        for pending in (planned, last):
            if pending is not None:
                self._write(*pending)
        return self.report

    def _start_rendering(self, plans: list[ThreadPlan]) -> Rendering:
        """The bodies of the threads new to the log: those the fold will ask for, unless
        another writer creates one first (then it is not asked for)."""
        if self.pool is None:
            return Rendering([])
        with self.engine.connect() as conn:
            known = stream_versions(conn, [plan.thread_id for plan in plans])
        posted = {
            te.posted_body(c.source)
            for plan in plans
            if plan.thread_id not in known
            for c in plan.comments
        }
        return self.pool.start(sorted(posted))

    def _plan(self, item: SourceThread | SkippedThread) -> ThreadPlan | None:
        if isinstance(item, SkippedThread):
            self.report.skip_thread(item.key, item.reason)
            return None
        try:
            plan = plan_thread(self.source.name, item)
        except PlanRefused as refused:
            self.report.skip_thread(item.key, "reply cycle", str(refused))
            self.report.comments_skipped["in a skipped thread"] += len(item.comments)
            for skipped in item.skipped:
                self.report.comments_skipped[skipped.reason] += 1
            self._tick(len(item.comments) + len(item.skipped))
            return None
        return plan

    def _write(self, plans: list[ThreadPlan], rendering: Rendering) -> None:
        outcomes = self._write_isolating(plans, rendering)
        written = [o.plan.thread_id for o in outcomes if not (o.already_there or o.folded)]
        if written and not self.dry_run:
            self.after_batch(written)
        for outcome in outcomes:
            self._count(outcome)
        self._tick(sum(len(p.comments) + len(p.skipped) for p in plans))

    def _write_isolating(
        self, plans: Sequence[ThreadPlan], rendering: Rendering
    ) -> list[ThreadOutcome]:
        try:
            with write_transaction(self.engine) as conn:
                outcomes = write_batch(
                    conn,
                    self.store,
                    self.source.name,
                    plans,
                    fold=self._folds,
                    render=rendering,
                )
                if self.dry_run:
                    raise _DryRun(outcomes)  # rolls the transaction back
            return outcomes
        except _DryRun as dry:
            return dry.outcomes
        except _THREAD_FAULTS as fault:
            if len(plans) == 1:
                plan = plans[0]
                self.report.skip_thread(plan.key, "refused by the database", _short(fault))
                self.report.comments_skipped["in a skipped thread"] += len(plan.comments)
                return []
            middle = len(plans) // 2
            return self._write_isolating(plans[:middle], rendering) + self._write_isolating(
                plans[middle:], rendering
            )

    def _count(self, outcome: ThreadOutcome) -> None:
        report, plan = self.report, outcome.plan
        if outcome.already_there:
            report.threads_already_there += 1
        else:
            report.threads_imported += 1
            report.thread_ids_from[plan.id_from] += 1
        report.comments_imported += outcome.comments_imported
        report.comments_already_there += outcome.comments_already_there
        report.events_appended += outcome.events
        for skipped in plan.skipped:
            report.comments_skipped[skipped.reason] += 1
        report.parents_missing += plan.parents_missing
        report.flattened += plan.flattened

    def _tick(self, comments: int) -> None:
        self.done += comments
        if self.progress is not None:
            self.progress(self.done, self.total)


def _short(fault: Exception) -> str:
    text = str(getattr(fault, "orig", None) or fault).strip().splitlines()
    return text[0][:200] if text else type(fault).__name__
