"""The HTTP load driver of `bench/run.py`, in its own process so its CPU is its own.

    python bench/load.py '{"mode": "workload", "base": "http://127.0.0.1:8000", ...}'

prints one JSON object with what it measured. Modes (asyncio + aiohttp, on uvloop):

- `workload`: the shared peer plan (bench/workload.py) posted to one thread by N closed-loop
  clients, in plan order; a reply whose parent is not acknowledged yet waits for it.
- `sustained`: N closed-loop clients for a fixed window over many threads, 30% replies to
  earlier comments of the same thread; only posts started and finished in the window count.
- `open`: posts at a fixed rate whatever the answers (open loop), top-level only, while one
  poller per thread reads the newest page; lag = first poll answer showing a comment minus
  the time its POST was sent.
- `reads`: one keep-alive connection, requests sent one at a time, round-robin over labels.
- `walk`: reads a whole thread page by page, following every reply cursor.

Latencies are in ms, measured in this process from send to body received.
"""

import asyncio
import bisect
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import uvloop
from page_reads import cpu_ticks
from workload import PROSE, plan

from shared.tokens import mint_token

HTTP_TIMEOUT = 30.0
USERS = 500
Json = dict[str, Any]


def percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary(latencies: list[float]) -> Json:
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.fmean(latencies) if latencies else None,
        "count": len(latencies),
    }


class Usage:
    """This process's CPU (share of one core) and the whole machine's busy share, over a span."""

    def __init__(self) -> None:
        self.cpu, self.ticks, self.wall = time.process_time(), cpu_ticks(), time.perf_counter()

    def result(self) -> Json:
        wall = time.perf_counter() - self.wall
        busy, total = (b - a for a, b in zip(self.ticks, cpu_ticks(), strict=True))
        return {
            "client_cpu": (time.process_time() - self.cpu) / wall if wall else 0.0,
            "machine_busy": busy / total if total else 0.0,
        }


def session(base: str, connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=base,
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
    )


def auth(secret: str, user: str) -> dict[str, str]:
    token = mint_token(secret, sub=user, name=f"Reader {user}", ttl=timedelta(hours=2))
    return {"Authorization": f"Bearer {token}"}


async def post(
    client: aiohttp.ClientSession, thread_id: str, payload: Json, headers: dict[str, str]
) -> tuple[str, Json | None]:
    """(status, 201 body or None); transport errors and timeouts as their exception's name."""
    try:
        async with client.post(
            f"/v1/threads/{thread_id}/comments", json=payload, headers=headers
        ) as response:
            if response.status != 201:
                await response.read()
                return str(response.status), None
            return "201", await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__, None


# --- closed loop: the peer workload on one thread --------------------------------------


async def workload(spec: Json) -> Json:
    planned = plan(spec["comments"], spec["reply_share"], spec["seed"])
    headers = {p.author: auth(spec["secret"], p.author) for p in planned}
    ids: list[str | None] = [None] * len(planned)
    acknowledged = [asyncio.Event() for _ in planned]
    queue = iter(planned)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    versions: list[int] = []
    orphans = 0

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal orphans
        for item in queue:  # one iterator shared by every client: each takes the next index
            parent_id = None
            if item.parent is not None:
                await acknowledged[item.parent].wait()
                parent_id = ids[item.parent]
                orphans += parent_id is None  # its parent was refused: posted top-level
            started = time.perf_counter()
            payload = {"body": item.body, "parent_id": parent_id}
            status, answer = await post(http, spec["thread_id"], payload, headers[item.author])
            statuses[status] += 1
            if answer is not None:
                latencies.append((time.perf_counter() - started) * 1000)
                ids[item.index] = answer["id"]
                versions.append(answer["version"])
            acknowledged[item.index].set()

    async with session(spec["base"], spec["clients"]) as http:
        usage = Usage()
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(spec["clients"])))
        elapsed = time.perf_counter() - started
        used = usage.result()
    accepted = statuses.pop("201", 0)
    return {
        **summary(latencies),
        **used,
        "posts_per_s": accepted / elapsed,
        "seconds": elapsed,
        "accepted": accepted,
        "refused": dict(statuses),
        "orphaned_replies": orphans,
        "max_version": max(versions, default=0),
        "first_id": ids[0],
    }


# --- closed loop: sustained, many threads ----------------------------------------------


async def sustained(spec: Json) -> Json:
    rng = random.Random(spec.get("seed", 11))
    run = spec["run"]
    threads: dict[str, list[str]] = {f"sustained-{i}-{run}": [] for i in range(spec["threads"])}
    thread_ids = list(threads)
    headers = [auth(spec["secret"], f"u{i}") for i in range(USERS)]
    now = time.perf_counter()
    start, end = now + spec["warmup"], now + spec["warmup"] + spec["seconds"]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def client(http: aiohttp.ClientSession) -> None:
        while time.perf_counter() < end:
            thread_id = rng.choice(thread_ids)
            earlier = threads[thread_id]
            parent = rng.choice(earlier) if earlier and rng.random() < spec["reply_share"] else None
            payload = {"body": " ".join(rng.sample(PROSE, 2)), "parent_id": parent}
            sent = time.perf_counter()
            status, answer = await post(http, thread_id, payload, rng.choice(headers))
            done = time.perf_counter()
            statuses[status] += 1
            if answer is not None:
                earlier.append(answer["id"])
                if start <= sent and done <= end:
                    latencies.append((done - sent) * 1000)

    async with session(spec["base"], spec["clients"]) as http:
        loops = asyncio.gather(*(client(http) for _ in range(spec["clients"])))
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        usage = Usage()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        used = usage.result()
        await loops
    accepted = statuses.pop("201", 0)
    return {
        **summary(latencies),
        **used,
        "posts_per_s": len(latencies) / spec["seconds"],
        "seconds": spec["seconds"],
        "accepted_total": accepted,
        "refused": dict(statuses),
        "comments_by_thread": {t: len(ids) for t, ids in threads.items()},
    }


# --- open loop: visibility lag ---------------------------------------------------------


@dataclass
class Sent:
    thread_id: str
    scheduled: float
    sent: float = 0.0
    done: float = 0.0
    status: str = ""
    comment_id: str | None = None
    version: int = 0


@dataclass
class Polls:
    """One thread's poll answers in order: when each arrived, its version and its ids."""

    at: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    ids: list[frozenset[str]] = field(default_factory=list)

    def first_showing(self, item: Sent) -> tuple[float, bool] | None:
        """(when, whether by id) of the first answer after the send that shows the comment:
        its id is on the newest page, or the page's version has reached the comment's (it
        was folded but has scrolled past the first page)."""
        for i in range(bisect.bisect_left(self.at, item.sent), len(self.at)):
            if item.comment_id in self.ids[i]:
                return self.at[i], True
            if self.versions[i] >= item.version:
                return self.at[i], False
        return None


async def open_loop(spec: Json) -> Json:
    rate, seconds, run = spec["rate"], spec["seconds"], spec["run"]
    thread_ids = [f"lag-{i}-{run}" for i in range(spec["threads"])]
    rng = random.Random(5)
    headers = [auth(spec["secret"], f"u{i}") for i in range(USERS)]
    polls = {t: Polls() for t in thread_ids}
    polling = True
    poll_seconds = spec["poll_ms"] / 1000
    page = {"sort": "newest", "limit": spec["page_limit"], "replies": 0}
    poll_latencies: list[float] = []

    async def poller(http: aiohttp.ClientSession, thread_id: str) -> None:
        seen = polls[thread_id]
        while polling:
            sent = time.perf_counter()
            try:
                async with http.get(f"/v1/threads/{thread_id}/comments", params=page) as r:
                    body = await r.json()
            except (aiohttp.ClientError, TimeoutError):
                continue
            arrived = time.perf_counter()
            poll_latencies.append((arrived - sent) * 1000)
            seen.at.append(arrived)
            seen.versions.append(body["version"])
            seen.ids.append(frozenset(c["id"] for c in body["comments"]))
            await asyncio.sleep(max(0.0, poll_seconds - (arrived - sent)))

    async def send(http: aiohttp.ClientSession, item: Sent) -> None:
        item.sent = time.perf_counter()
        payload = {"body": " ".join(rng.sample(PROSE, 2)), "parent_id": None}
        item.status, answer = await post(http, item.thread_id, payload, rng.choice(headers))
        item.done = time.perf_counter()
        if answer is not None:
            item.comment_id, item.version = answer["id"], answer["version"]

    def caught_up() -> bool:
        newest: dict[str, int] = {}
        for item in items:
            if item.comment_id:
                newest[item.thread_id] = max(newest.get(item.thread_id, 0), item.version)
        return all(polls[t].versions and polls[t].versions[-1] >= v for t, v in newest.items())

    items: list[Sent] = []
    async with (
        session(spec["base"], spec["connections"]) as http,
        session(spec["base"], len(thread_ids)) as readers,
    ):
        pollers = [asyncio.create_task(poller(readers, t)) for t in thread_ids]
        usage = Usage()
        origin = time.perf_counter() + 0.2
        tasks = []
        for i in range(int(rate * seconds)):
            item = Sent(thread_ids[i % len(thread_ids)], origin + i / rate)
            items.append(item)
            await asyncio.sleep(max(0.0, item.scheduled - time.perf_counter()))
            tasks.append(asyncio.create_task(send(http, item)))
        await asyncio.gather(*tasks)
        posting_done = time.perf_counter()
        used = usage.result()
        deadline = posting_done + spec["settle_seconds"]
        while not caught_up() and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        polling = False
        await asyncio.gather(*pollers)

    accepted = [item for item in items if item.comment_id]
    lags: list[float] = []
    by_id = 0
    for item in accepted:
        shown = polls[item.thread_id].first_showing(item)
        if shown is not None:
            lags.append((shown[0] - item.sent) * 1000)
            by_id += shown[1]
    statuses = Counter(item.status for item in items)
    statuses.pop("201", None)
    sends = [item.sent for item in items]
    return {
        "lag": summary(lags),
        "post": summary([(item.done - item.sent) * 1000 for item in accepted]),
        "poll": summary(poll_latencies),
        **used,
        "target_rate": rate,
        "offered_rate": (len(sends) - 1) / (max(sends) - min(sends)),
        "accepted_rate": len(accepted) / (max(i.done for i in items) - min(sends)),
        "send_slip_p99_ms": percentile([(i.sent - i.scheduled) * 1000 for i in items], 99),
        "sent": len(items),
        "accepted": len(accepted),
        "refused": dict(statuses),
        "seen": len(lags),
        "seen_by_id": by_id,
        "never_seen": len(accepted) - len(lags),
        "polls": len(poll_latencies),
    }


# --- reads -----------------------------------------------------------------------------


async def reads(spec: Json) -> Json:
    """Each request: {"label", "method", "path", "params"?, "json"?}; `warmup` untimed rounds."""
    requests = spec["requests"]
    latencies: dict[str, list[float]] = {r["label"]: [] for r in requests}
    sizes: dict[str, list[int]] = {r["label"]: [] for r in requests}
    errors: Counter[str] = Counter()
    async with session(spec["base"], 1) as http:
        usage = Usage()
        for round_ in range(spec["warmup"] + spec["n"]):
            for r in requests:
                started = time.perf_counter()
                async with http.request(
                    r["method"], r["path"], params=r.get("params"), json=r.get("json")
                ) as response:
                    content = await response.read()
                elapsed = (time.perf_counter() - started) * 1000
                if response.status >= 300:
                    errors[r["label"]] += 1
                if round_ >= spec["warmup"]:
                    latencies[r["label"]].append(elapsed)
                    sizes[r["label"]].append(len(content))
        used = usage.result()
    return {
        "rows": {
            label: {
                **summary(lat),
                "errors": errors[label],
                "bytes": statistics.fmean(sizes[label]),
            }
            for label, lat in latencies.items()
        },
        **used,
    }


async def walk(spec: Json) -> Json:
    """The whole thread, as a widget showing everything would fetch it: every top-level page
    (sort=oldest), then every `replies_next_cursor`, depth first."""
    limit, shown = spec["limit"], spec["replies"]
    times: list[float] = []
    counts: set[int] = set()
    requests = 0
    async with session(spec["base"], 1) as http:

        async def get(path: str, params: Json) -> Json:
            async with http.get(path, params=params) as response:
                response.raise_for_status()
                answer: Json = await response.json()
                return answer

        async def once() -> int:
            nonlocal requests
            found, more = 0, list[tuple[str, str]]()

            def visit(nodes: list[Json]) -> None:
                nonlocal found
                for node in nodes:
                    found += 1
                    visit(node["replies"])
                    if node.get("replies_next_cursor"):
                        more.append((node["id"], node["replies_next_cursor"]))

            params: Json = {"sort": "oldest", "limit": limit, "replies": shown}
            path = f"/v1/threads/{spec['thread_id']}/comments"
            while True:
                body = await get(path, params)
                requests += 1
                visit(body["comments"])
                if body["next_cursor"] is None:
                    break
                params = {**params, "cursor": body["next_cursor"]}
            while more:
                comment_id, cursor = more.pop()
                replies = {"limit": limit, "replies": shown, "cursor": cursor}
                body = await get(f"/v1/comments/{comment_id}/replies", replies)
                requests += 1
                visit(body["replies"])
                if body["next_cursor"]:
                    more.append((comment_id, body["next_cursor"]))
            return found

        usage = Usage()
        for _ in range(spec["repeats"]):
            started = time.perf_counter()
            counts.add(await once())
            times.append((time.perf_counter() - started) * 1000)
        used = usage.result()
    return {
        **summary(times),
        **used,
        "requests_per_walk": requests / spec["repeats"],
        "comments": sorted(counts),
    }


MODES: dict[str, Callable[[Json], Coroutine[Any, Any, Json]]] = {
    "workload": workload,
    "sustained": sustained,
    "open": open_loop,
    "reads": reads,
    "walk": walk,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = uvloop.run(MODES[spec["mode"]](spec))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
