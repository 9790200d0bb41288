"""Write latency while many reads wait with `min_version` (docs/decisions.md §19).

Against a running API with no worker (so nothing folds and every wait lasts its full
`CHORUS_READ_WAIT_SECONDS`): post a comment, start N concurrent
`GET /v1/threads/{id}/comments?min_version=...`, and while they wait, post top-level
comments one after another and time them; then the same posts with nobody waiting.

    python bench/min_version_waits.py --base http://127.0.0.1:8000 --secret "$SECRET" \\
        --waiters 400 --min-version head     # a version the log has: a real wait
    python bench/min_version_waits.py ... --min-version ahead    # far beyond the log's head

Prints one JSON object: write p50/p95 (ms) alone and during the waits, how the waiting
reads were answered, and how long they took.
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import httpx

from shared.tokens import mint_token

WRITE_SECONDS = 4.0


def _post(client: httpx.Client, thread: str, headers: dict[str, str]) -> Any:
    response = client.post(f"/v1/threads/{thread}/comments", json={"body": "b"}, headers=headers)
    response.raise_for_status()
    return response.json()


def _write_latencies(
    client: httpx.Client, thread: str, headers: dict[str, str], waiting: BaseProcess | None
) -> list[float]:
    """Post one comment at a time for WRITE_SECONDS, or until the waiting reads are done."""
    latencies: list[float] = []
    deadline = time.monotonic() + WRITE_SECONDS
    while time.monotonic() < deadline and (waiting is None or waiting.is_alive()):
        started = time.monotonic()
        _post(client, thread, headers)
        latencies.append((time.monotonic() - started) * 1000)
    return latencies


def _wait_all(base: str, url: str, params: dict[str, int], waiters: int, out: Connection) -> None:
    """In a process of its own, so the waiting reads' client does not slow the writer."""

    async def run() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=waiters, max_keepalive_connections=None)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

            async def once() -> tuple[int, float]:
                started = time.monotonic()
                response = await client.get(url, params=params)
                return response.status_code, (time.monotonic() - started) * 1000

            answers = await asyncio.gather(*(once() for _ in range(waiters)))
        durations = sorted(ms for _, ms in answers)
        return {
            "statuses": dict(Counter(status for status, _ in answers)),
            "p50_ms": round(statistics.median(durations), 1),
            "max_ms": round(durations[-1], 1),
        }

    out.send(asyncio.run(run()))


def _summary(latencies: list[float]) -> dict[str, float | int] | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    token = mint_token(args.secret, sub="bench", name="Bench")
    headers = {"Authorization": f"Bearer {token}"}
    run = f"mv-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=args.base, timeout=60) as client:
        written = _post(client, run, headers)
        min_version = written["version"] + (10**6 if args.min_version == "ahead" else 0)
        alone = _write_latencies(client, f"{run}-writes", headers, None)
        receive, send = multiprocessing.Pipe(duplex=False)
        url, params = f"/v1/threads/{run}/comments", {"min_version": min_version}
        waiting = multiprocessing.get_context("spawn").Process(
            target=_wait_all, args=(args.base, url, params, args.waiters, send)
        )
        waiting.start()
        time.sleep(1.0)  # let the reads reach the server before timing writes
        during = _write_latencies(client, f"{run}-writes", headers, waiting)
        reads = receive.recv()
        waiting.join()
    return {
        "waiters": args.waiters,
        "min_version": args.min_version,
        "writes_alone": _summary(alone),
        "writes_during_waits": _summary(during),
        "waiting_reads": reads,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--waiters", type=int, default=400)
    parser.add_argument("--min-version", choices=["head", "ahead"], default="head")
    print(json.dumps(main(parser.parse_args())))
