"""`chorus worker`: an RQ worker for all Chorus queues, with RQ's scheduler."""

import logging

from rq import Queue, SimpleWorker

from services.worker.context import open_context
from shared.logging_setup import configure_logging
from shared.nudges import FOLD_QUEUE, enqueue_mail_if_due, enqueue_sweep_if_due
from shared.settings import Settings


class ChorusWorker(SimpleWorker):
    """SimpleWorker: jobs run in-process (no fork per job), so one job can fold a burst.

    Its maintenance pass also queues the periodic sweep (one per interval across all
    workers) and a mailer run (at most one every few seconds across all workers: digests
    and retries fall due with no other nudge). That needs nothing in Redis to survive:
    after a flush, a crash or a killed scheduler, the next maintenance pass of any worker
    queues it again.
    """

    sweep_interval = 10

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        enqueue_sweep_if_due(self.connection, self.sweep_interval)
        enqueue_mail_if_due(self.connection)


def run_worker(settings: Settings, *, burst: bool = False) -> bool:
    configure_logging(logging.INFO)  # JSON lines; a job's lines carry its request id
    ctx = open_context(settings)
    try:
        queue = Queue(FOLD_QUEUE, connection=ctx.redis)
        # The idle wait (worker_ttl - 15 s) bounds how often maintenance, and so the sweep, runs.
        worker = ChorusWorker(
            [queue], connection=ctx.redis, worker_ttl=settings.sweep_interval_seconds + 15
        )
        worker.sweep_interval = settings.sweep_interval_seconds
        worker.maintenance_interval = settings.sweep_interval_seconds
        return bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
    finally:
        ctx.close()
