"""`chorus worker`: an RQ worker for all Chorus queues, with RQ's scheduler."""

import logging

from rq import Queue, SimpleWorker

from services.worker.context import open_context
from shared.nudges import FOLD_QUEUE, schedule_sweep
from shared.settings import Settings


class ChorusWorker(SimpleWorker):
    """SimpleWorker: jobs run in-process (no fork per job), so one job can fold a burst.

    Its maintenance pass also re-arms the periodic sweep, so a flushed Redis heals itself.
    """

    sweep_interval = 10

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        schedule_sweep(self.connection, self.sweep_interval)


def run_worker(settings: Settings, *, burst: bool = False) -> bool:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = open_context(settings)
    try:
        queue = Queue(FOLD_QUEUE, connection=ctx.redis)
        worker = ChorusWorker([queue], connection=ctx.redis, worker_ttl=30)
        worker.sweep_interval = settings.sweep_interval_seconds
        worker.maintenance_interval = settings.sweep_interval_seconds
        return bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
    finally:
        ctx.close()
