"""Rendering an import's bodies on every core, while the importer does something else.

Markdown rendering is most of the CPU a fold spends on a new comment (about 0.15-0.4 ms a
body, against a few µs for everything else it does). The importer hands each batch's
bodies to a pool of processes as soon as the batch is planned (`start`), then writes the
batch before it, so rendering batch N+1 overlaps writing batch N; the fold of a batch
takes its HTML from its `Rendering`. Small batches are rendered here, when needed: a
round trip to the pool costs more.
"""

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from shared.rendering import render_markdown

MIN_POOLED = 256


class Rendering:
    """One batch's bodies -> their HTML; callable as a fold's `Render`. A body it was not
    given is rendered here (the fold asks for the bodies of the threads it creates, which
    are some of the batch's)."""

    def __init__(self, bodies: list[str], results: Iterator[str] | None = None) -> None:
        self._bodies = bodies
        self._results = results if results is not None else iter(())
        self._html: dict[str, str] | None = None

    def __call__(self, bodies: list[str]) -> list[str]:
        if self._html is None:  # the first call waits for the pool
            self._html = dict(zip(self._bodies, self._results, strict=True))
        html = self._html
        return [html[body] if body in html else render_markdown(body) for body in bodies]


class RenderPool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def start(self, bodies: list[str]) -> Rendering:
        """Start rendering `bodies` (distinct) in the pool; the answer waits only when read."""
        if len(bodies) < MIN_POOLED:
            return Rendering([])  # rendered when the fold asks
        if self._pool is None:
            # spawn, not fork: the importer holds database connections a child must not share.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context)
        chunk = max(1, len(bodies) // (self.processes * 4))
        return Rendering(bodies, self._pool.map(render_markdown, bodies, chunksize=chunk))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
