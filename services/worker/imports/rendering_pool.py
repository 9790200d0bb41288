"""Rendering an import's bodies on every core.

Markdown rendering is most of the CPU a fold spends on a new comment (about 0.4 ms a
body, against a few µs for everything else it does), so an import that folds the threads
it creates renders each batch's bodies in a pool of processes while the database is idle
for it anyway. Small batches are rendered here: a round trip to the pool costs more.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from shared.rendering import render_markdown

MIN_POOLED = 256


class PooledRender:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, bodies: list[str]) -> list[str]:
        if len(bodies) < MIN_POOLED:
            return [render_markdown(body) for body in bodies]
        if self._pool is None:
            # spawn, not fork: the importer holds database connections a child must not share.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context)
        chunk = max(1, len(bodies) // (self.processes * 4))
        return list(self._pool.map(render_markdown, bodies, chunksize=chunk))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
