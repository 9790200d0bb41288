"""The load driver of the hot-story scenario (bench/hot_story.py), in its own process.

    python bench/hot_load.py '{"mode": "readers", "base": "http://127.0.0.1:8000", ...}'

prints one JSON object with what it measured. Modes (uvloop):

- `readers`: N closed-loop clients (aiohttp) load the thread's first page for a window;
  each asks with `If-None-Match` (the ETag of its last full answer) except a `full_share`
  of requests, sent without. A trickle writer may post meanwhile (`writer_rate` posts/s),
  so some conditional requests find the thread moved on and get the full page (200).
  `path` reads that instead (e.g. `/healthz`, the API's floor), always in full.
- `live`: N Server-Sent Events subscribers on the thread (raw asyncio connections: at
  thousands of streams aiohttp's per-line parsing would be the driver's own bottleneck),
  then a writer posts K comments at an interval; for every comment and every subscriber,
  the time from the comment's 201 to its `comment` event arriving here.

Latencies are in ms, measured in this process.
"""

import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import uvloop
from load import Usage, auth, percentile, post, session, summary
from workload import PROSE

Json = dict[str, Any]
CONNECT_TIMEOUT = 30.0


# --- readers of the first page ---------------------------------------------------------


async def readers(spec: Json) -> Json:
    path = spec.get("path") or f"/v1/threads/{spec['thread_id']}/comments"
    params = {"limit": spec["limit"]} if "path" not in spec else {}
    rng = random.Random(spec.get("seed", 3))
    now = time.perf_counter()
    start, end = now + spec["warmup"], now + spec["warmup"] + spec["seconds"]
    timed: dict[str, list[float]] = {"304": [], "full": [], "conditional_200": []}
    other: Counter[str] = Counter()
    posted: Counter[str] = Counter()

    async def read(http: aiohttp.ClientSession, etag: str | None) -> tuple[int, str | None]:
        headers = {} if etag is None else {"If-None-Match": etag}
        async with http.get(path, params=params, headers=headers) as response:
            await response.read()
            return response.status, response.headers.get("ETag")

    async def client(http: aiohttp.ClientSession) -> None:
        status, etag = await read(http, None)  # the copy this reader revalidates
        while time.perf_counter() < end:
            full = rng.random() < spec["full_share"]
            sent = time.perf_counter()
            try:
                status, tag = await read(http, None if full else etag)
            except (aiohttp.ClientError, TimeoutError) as exc:
                other[type(exc).__name__] += 1
                continue
            done = time.perf_counter()
            if status == 200:
                etag = tag
            kind = "full" if full else "304" if status == 304 else "conditional_200"
            if status not in (200, 304):
                other[str(status)] += 1
            elif start <= sent and done <= end:
                timed[kind].append((done - sent) * 1000)

    async def writer(http: aiohttp.ClientSession) -> None:
        headers = auth(spec["secret"], "hot-writer")
        interval = 1 / spec["writer_rate"]
        while time.perf_counter() < end:
            payload = {"body": rng.choice(PROSE), "parent_id": None}
            status, _ = await post(http, spec["thread_id"], payload, headers)
            posted[status] += 1
            await asyncio.sleep(interval)

    async with session(spec["base"], spec["clients"] + 1) as http:
        tasks = [client(http) for _ in range(spec["clients"])]
        if spec.get("writer_rate"):
            tasks.append(writer(http))
        loops = asyncio.gather(*tasks)
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        usage = Usage()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        used = usage.result()
        await loops
    seconds = spec["seconds"]
    return {
        kind: {**summary(latencies), "per_s": len(latencies) / seconds}
        for kind, latencies in timed.items()
    } | {
        **used,
        "seconds": seconds,
        "answers_per_s": sum(len(latencies) for latencies in timed.values()) / seconds,
        "other": dict(other),
        "posted": dict(posted),
    }


# --- live subscribers ------------------------------------------------------------------


@dataclass(eq=False)
class Subscriber(asyncio.Protocol):
    """One event stream read off the socket: each `comment` event's arrival, by comment id.

    Events are split on the blank line that ends them; the chunked transfer coding's size
    lines land between events and are skipped with everything else that is not `data:`."""

    request: bytes
    connected: asyncio.Future[int]
    """The response's status, once its head arrived."""
    arrived: dict[str, float] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    buffer: bytes = b""
    closed: str | None = None
    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if not self.connected.done():
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            self.connected.set_result(int(head.split(b" ", 2)[1]))
            self.buffer = rest
        *events, self.buffer = self.buffer.split(b"\n\n")
        for event in events:
            at = event.find(b"data: ")
            if at < 0:
                continue
            data = json.loads(event[at + 6 :].split(b"\n", 1)[0])
            self.kinds[data["type"]] += 1
            if data["type"] == "comment":
                self.arrived.setdefault(data["comment_id"], now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = type(exc).__name__ if exc else "closed by the server"
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(self.closed))


def raise_fd_limit(wanted: int) -> int:
    """The soft limit on open files raised towards `wanted` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


async def live(spec: Json) -> Json:
    loop = asyncio.get_running_loop()
    url = urlsplit(spec["base"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    fd_limit = raise_fd_limit(spec["subscribers"] + 256)
    path = f"/v1/threads/{spec['thread_id']}/live?since={spec['since']}"
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    subscribers: list[Subscriber] = []
    refused: Counter[str] = Counter()
    gate = asyncio.Semaphore(spec["connect_concurrency"])

    async def subscribe() -> None:
        async with gate:
            sub = Subscriber(request.encode(), loop.create_future())
            try:
                await loop.create_connection(lambda: sub, host, port)
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    status = await sub.connected
            except (OSError, TimeoutError) as exc:
                refused[type(exc).__name__] += 1
                if sub.transport is not None:
                    sub.transport.close()
                return
            if status != 200:
                refused[str(status)] += 1
                return
            subscribers.append(sub)

    usage = Usage()
    started = time.perf_counter()
    await asyncio.gather(*(subscribe() for _ in range(spec["subscribers"])))
    connect_seconds = time.perf_counter() - started
    connecting = usage.result()
    await asyncio.sleep(spec["pause"])  # every stream's catch-up read is done

    posted: dict[str, float] = {}
    statuses: Counter[str] = Counter()
    headers = auth(spec["secret"], "live-writer")
    async with session(spec["base"], 1) as http:
        usage = Usage()
        for i in range(spec["comments"]):
            payload = {"body": f"{PROSE[i % len(PROSE)]} (live #{i})", "parent_id": None}
            status, answer = await post(http, spec["thread_id"], payload, headers)
            statuses[status] += 1
            if answer is not None:
                posted[answer["id"]] = time.perf_counter()
            await asyncio.sleep(spec["interval"])
        deadline = time.perf_counter() + spec["settle_seconds"]
        while time.perf_counter() < deadline and not all(
            len(sub.arrived.keys() & posted.keys()) == len(posted) for sub in subscribers
        ):
            await asyncio.sleep(0.1)
        delivering = usage.result()
    open_at_end = sum(sub.closed is None for sub in subscribers)
    for sub in subscribers:
        if sub.transport is not None:
            sub.transport.close()

    latencies = [
        (sub.arrived[cid] - at) * 1000
        for sub in subscribers
        for cid, at in posted.items()
        if cid in sub.arrived
    ]
    per_comment = [
        percentile([(s.arrived[cid] - at) * 1000 for s in subscribers if cid in s.arrived], 99)
        for cid, at in posted.items()
    ]
    kinds: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for sub in subscribers:
        kinds.update(sub.kinds)
        closed.update([sub.closed] if sub.closed else [])
    statuses.pop("201", None)
    return {
        "asked": spec["subscribers"],
        "established": len(subscribers),
        "refused": dict(refused),
        "connect_seconds": connect_seconds,
        "connecting": connecting,
        "open_at_end": open_at_end,
        "closed_early": dict(closed),
        "posted": len(posted),
        "post_refused": dict(statuses),
        "deliveries": len(latencies),
        "expected": len(subscribers) * len(posted),
        "misses": len(subscribers) * len(posted) - len(latencies),
        "subscribers_missing_some": sum(
            len(sub.arrived.keys() & posted.keys()) < len(posted) for sub in subscribers
        ),
        "delivery": {**summary(latencies), "max_ms": max(latencies, default=None)},
        "worst_comment_p99_ms": max((p for p in per_comment if p is not None), default=None),
        "events": dict(kinds),
        "delivering": delivering,
        "driver_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fd_limit": fd_limit,
    }


MODES: dict[str, Callable[[Json], Coroutine[Any, Any, Json]]] = {
    "readers": readers,
    "live": live,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(uvloop.run(MODES[spec["mode"]](spec))))


if __name__ == "__main__":
    main()
