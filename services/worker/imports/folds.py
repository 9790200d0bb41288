"""Folding as the import goes: what happens to each batch's threads once committed.

Two ways, chosen by `chorus import --fold` (decision 34 says which is faster):
- `NudgeFolds`: nudge the threads as the command bus does (shared.nudges); the workers
  fold them, in parallel with the import's next batches;
- `FoldHere`: the import process folds them itself, both projections in one transaction
  per thread as a fold job does, before it reads the next batch.
Either way a fold queues no email for imported comments (notification_projector).
"""

from collections.abc import Callable, Sequence

from redis import Redis
from sqlalchemy.engine import Engine

from services.worker.folding import fold_all, thread_projection
from services.worker.notification_projector import notification_projection
from shared.nudges import Nudger
from shared.store import EventStore

AfterBatch = Callable[[Sequence[str]], None]
"""Called with the threads of each committed batch."""


class NudgeFolds:
    def __init__(self, redis: Redis) -> None:
        self.nudger = Nudger(redis)

    def __call__(self, thread_ids: Sequence[str]) -> None:
        # A lost nudge costs only latency: the workers' sweep finds the thread.
        self.nudger.nudge_many(dict.fromkeys(thread_ids))


class FoldHere:
    def __init__(self, engine: Engine, store: EventStore, batch_size: int = 1000) -> None:
        self.engine, self.store, self.batch_size = engine, store, batch_size
        self.projections = [thread_projection(), notification_projection()]

    def __call__(self, thread_ids: Sequence[str]) -> None:
        for thread_id in thread_ids:
            fold_all(
                self.engine, self.store, thread_id, self.projections, batch_size=self.batch_size
            )


def no_folds(_thread_ids: Sequence[str]) -> None:
    """Leave the folding to the workers' sweep."""
