"""The hot story (issue 11): one thread of thousands of comments that everyone reads at once.

`bench/run.py --only ceilings,hot,hot-peer` runs it on the real stack (bench/stack.py):

1. seed: the shared plan (bench/workload.py, 30% replies) posted into one thread by 64
   clients through the API (bench/load.py `workload`), then folded;
2. readers (bench/hot_load.py `readers`, 64 closed-loop clients on the first page,
   `limit=20`): all conditional (`If-None-Match`, answered 304), all full, then a mix
   (90% conditional) while a writer posts 2 comments a second;
3. live (bench/hot_load.py `live`): thousands of Server-Sent Events subscribers on the
   thread, then a writer posts comments at an interval; each comment's delivery to each
   subscriber is timed from its 201;
4. `hot-peer`: Isso given the same thread, read whole by concurrent readers.

The 304 rate is set beside a ceiling measured in the same run by the same readers: the
no-I/O FastAPI app of bench/ceilings.py, served as `chorus api` serves, answering 304.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from ceilings import running_noio
from drivers import Json, drive, log, wait_for_thread
from stack import JWT_SECRET, Stack
from workload import REPLY_SHARE, SEED

from shared.ids import new_id

TARGET_304_SHARE = 0.70
TARGET_FULL_P99_MS = 50.0
TARGET_SUBSCRIBERS = 5_000
TARGET_DELIVERY_P99_MS = 1_000.0
PAGE_LIMIT = 20


@dataclass(frozen=True)
class HotScale:
    comments: int
    clients: int
    few_clients: int
    seconds: float
    full_share: float
    writer_rate: float
    subscribers: int
    live_comments: int
    live_interval: float
    peer_clients: int
    peer_seconds: float


HOT_FULL = HotScale(5_000, 64, 4, 10, 0.1, 2, 5_000, 20, 0.5, 4, 20)
HOT_QUICK = HotScale(200, 16, 2, 2, 0.1, 2, 50, 3, 0.5, 2, 2)


def hot(stack: Stack, scale: HotScale, results: dict[str, Any]) -> None:
    found: Json = {}
    results["hot"] = found
    thread_id = f"hot-{new_id()[-6:]}"
    log(f"hot: seeding {scale.comments:,} comments into {thread_id} (64 clients)")
    seeded = drive(
        {
            "mode": "workload",
            "base": stack.base_url,
            "secret": JWT_SECRET,
            "thread_id": thread_id,
            "clients": 64,
            "comments": scale.comments,
            "reply_share": REPLY_SHARE,
            "seed": SEED,
        }
    )
    thread = wait_for_thread(stack.base_url, thread_id, seeded["max_version"])
    found["seed"] = {
        "posts_per_s": seeded["posts_per_s"],
        "accepted": seeded["accepted"],
        "shown": thread.get("comment_count"),
    }
    readers = {
        "mode": "readers",
        "base": stack.base_url,
        "secret": JWT_SECRET,
        "thread_id": thread_id,
        "clients": scale.clients,
        "seconds": scale.seconds,
        "warmup": 1.0,
        "limit": PAGE_LIMIT,
    }
    log(f"hot: the no-I/O 304 ceiling, {scale.clients} clients, {scale.seconds:g} s")
    with running_noio(stack.api_workers) as noio:
        ceiling = readers | {"base": noio, "path": "/notes", "full_share": 0.0}
        found["ceiling"] = drive(ceiling, "hot_load.py")
    found["ceiling_304s_per_s"] = found["ceiling"]["304"]["per_s"]
    phases: list[tuple[str, Json]] = [
        ("healthz", {"full_share": 1.0, "path": "/healthz"}),
        ("conditional", {"full_share": 0.0}),
        ("full", {"full_share": 1.0}),
        ("full_few", {"full_share": 1.0, "clients": scale.few_clients}),
        ("mix", {"full_share": scale.full_share, "writer_rate": scale.writer_rate}),
    ]
    for name, phase in phases:
        spec = readers | phase
        log(f"hot: {name} reads, {spec['clients']} clients, {scale.seconds:g} s")
        found[name] = drive(spec, "hot_load.py")
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        posted = found["mix"]["posted"].get("201", 0)
        version = wait_for_thread(stack.base_url, thread_id, 0)["version"]
        page = client.get(f"/v1/threads/{thread_id}/comments", params={"limit": PAGE_LIMIT})
        found["thread"] = {"version": version, "page_bytes": len(page.content)}
    log(f"hot: {scale.subscribers:,} live subscribers, {scale.live_comments} comments")
    rss = ApiMemory(stack)
    found["live"] = drive(
        {
            "mode": "live",
            "base": stack.base_url,
            "secret": JWT_SECRET,
            "thread_id": thread_id,
            "since": version,
            "subscribers": scale.subscribers,
            "connect_concurrency": 200,
            "pause": 2.0,
            "comments": scale.live_comments,
            "interval": scale.live_interval,
            "settle_seconds": 10.0,
        },
        "hot_load.py",
    )
    found["live"]["api_rss_mib"] = rss.after()
    found["mix"]["posted_accepted"] = posted


class ApiMemory:
    """Resident memory of the API's worker processes (children of `chorus api`), in MiB:
    before and after, read from /proc."""

    def __init__(self, stack: Stack) -> None:
        self.pid = stack.api_pid
        self.before = self.total()

    def total(self) -> float:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        total = 0
        for child in children.read_text().split() if children.exists() else []:
            status = Path(f"/proc/{child}/status")
            for line in status.read_text().splitlines() if status.exists() else []:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def after(self) -> Json:
        return {"before": self.before, "after": self.total()}


def hot_peer(scale: HotScale, results: dict[str, Any]) -> None:
    from isso_peer import read_rate

    log(
        f"hot-peer: Isso, {scale.comments:,} comments, {scale.peer_clients} readers for "
        f"{scale.peer_seconds:g} s"
    )
    started = time.perf_counter()
    results["hot_peer"] = read_rate(scale.comments, scale.peer_clients, scale.peer_seconds)
    results["hot_peer"]["run_seconds"] = time.perf_counter() - started


# --- the report ------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _cpu(got: Json) -> str:
    return f"{got['client_cpu']:.0%} / {got['machine_busy']:.0%}"


def hot_section(results: dict[str, Any], scale: HotScale) -> list[str]:
    found, isso = results.get("hot"), results.get("hot_peer")
    if not found and not isso:
        return []
    lines = [
        f"## The hot story: one thread of {scale.comments:,} comments",
        "",
        f"Seeded through the API by 64 clients ({REPLY_SHARE:.0%} replies). Readers: "
        f"{scale.clients} closed-loop clients (aiohttp, their own process) on the first page "
        f"(`limit={PAGE_LIMIT}`, default `replies=3`) for {scale.seconds:g} s each; a "
        "conditional request carries the ETag of that client's last full answer. Client CPU "
        "(share of one core) / machine busy beside each.",
        "",
    ]
    if found and "conditional" in found:
        lines += _reads_rows(found, isso, scale)
    if found and "live" in found:
        lines += _live_rows(found["live"], scale)
    if isso:
        lines += [
            f"Isso {isso['version']} on the same plan ({isso['posted']:,} posted by 64 "
            f"clients), its whole thread ({isso['comments']:,} comments) read by "
            f"{isso['clients']} concurrent readers: {isso['reads']} reads, "
            f"**{_num(isso['reads_per_s'], 2)} reads/s**, p50 {_num(isso['p50_ms'])} ms, "
            f"p99 {_num(isso['p99_ms'])} ms. Isso has no paging and no ETag: each reader "
            "gets the whole thread, every time.",
            "",
        ]
    return lines


def _rate(got: Json) -> str:
    return f"{_num(got['per_s'])} ({_num(got['p50_ms'], 1)} / {_num(got['p99_ms'], 1)})"


def _p99_target(got: Json) -> str:
    return f"p99 < 50 ms: {_met((got['p99_ms'] or 1e9) < TARGET_FULL_P99_MS)}"


def _reads_rows(found: Json, isso: Json | None, scale: HotScale) -> list[str]:
    ceiling = found["ceiling_304s_per_s"]
    cond, mix = found["conditional"], found["mix"]
    share = cond["304"]["per_s"] / ceiling if ceiling else 0.0
    isso_rate = f"Isso {_num(isso['reads_per_s'], 2)} whole-thread reads/s" if isso else "-"
    floor = found["healthz"]["full"]
    rows = [
        (
            f"the ceiling: no-I/O FastAPI `def` route answering 304, {scale.clients} clients",
            _rate(found["ceiling"]["304"]),
            "",
            "bench/ceilings.py `noio_app`, same uvicorn setup",
            _cpu(found["ceiling"]),
        ),
        (
            f"`GET /healthz` (Chorus, no database, `async def`), {scale.clients} clients",
            _rate(floor),
            "",
            f"{share_of(floor['per_s'], ceiling)} of the no-I/O 304 ceiling",
            _cpu(found["healthz"]),
        ),
        (
            f"304s, all conditional, {scale.clients} clients",
            _rate(cond["304"]),
            f"≥ 70% of the ceiling: {share:.0%}, {_met(share >= TARGET_304_SHARE)}",
            f"no-I/O 304 ceiling {_num(ceiling)}/s",
            _cpu(cond),
        ),
        (
            f"full first pages, none conditional, {scale.clients} clients",
            _rate(found["full"]["full"]),
            _p99_target(found["full"]["full"]),
            isso_rate,
            _cpu(found["full"]),
        ),
        (
            f"full first pages, none conditional, {scale.few_clients} clients",
            _rate(found["full_few"]["full"]),
            _p99_target(found["full_few"]["full"]),
            "",
            _cpu(found["full_few"]),
        ),
        (
            f"mix ({1 - scale.full_share:.0%} conditional, {scale.writer_rate:g} posts/s): 304s",
            _rate(mix["304"]),
            "",
            f"{share_of(mix['304']['per_s'], ceiling)} of the ceiling",
            _cpu(mix),
        ),
        (
            "mix: full first pages (asked without ETag)",
            _rate(mix["full"]),
            _p99_target(mix["full"]),
            "",
            "",
        ),
        (
            "mix: conditional answered 200 (the thread had moved on)",
            _rate(mix["conditional_200"]),
            "",
            f"{mix['posted_accepted']} posts accepted meanwhile",
            "",
        ),
    ]
    errors = {
        f"{phase}: {kind}": n
        for phase in ("healthz", "conditional", "full", "full_few", "mix")
        for kind, n in found[phase]["other"].items()
    }
    return [
        "| figure | per s (p50 / p99 ms) | target | ceiling / peer, same run "
        "| client CPU / machine |",
        "|---|---:|---|---|---:|",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        f"First page: {found['thread']['page_bytes'] / 1024:.1f} KiB. Seeding: "
        f"{found['seed']['accepted']:,} accepted at {_num(found['seed']['posts_per_s'])} "
        f"posts/s, the thread shows {found['seed']['shown']}"
        f"{'' if found['seed']['shown'] == found['seed']['accepted'] else ' (**NOT all of them**)'}"
        f". Errors and other answers: "
        f"{errors or 'none'}.",
        "",
    ]


def share_of(part: float | None, whole: float | None) -> str:
    return "-" if part is None or not whole else f"{part / whole:.0%}"


def _live_rows(live: Json, scale: HotScale) -> list[str]:
    delivery = live["delivery"]
    enough = live["established"] >= TARGET_SUBSCRIBERS
    fast = (delivery["p99_ms"] or 1e9) < TARGET_DELIVERY_P99_MS
    memory = live["api_rss_mib"]
    return [
        f"Live: {live['asked']:,} Server-Sent Events subscribers asked for (raw connections, "
        "200 opening at a time, from the load driver's own process), then "
        f"{live['posted']} comments posted {scale.live_interval:g} s apart; delivery = "
        "arrival of the comment's event at a subscriber minus the arrival of its 201.",
        "",
        "| figure | value | target |",
        "|---|---:|---|",
        f"| subscribers established (refused) | {live['established']:,} "
        f"({live['refused'] or 0}) | ≥ {TARGET_SUBSCRIBERS:,}: {_met(enough)} |",
        f"| delivery p50 / p99 / max ms | {_num(delivery['p50_ms'])} / "
        f"{_num(delivery['p99_ms'])} / {_num(delivery['max_ms'])} | p99 < 1 s: {_met(fast)} |",
        f"| deliveries / expected; misses | {live['deliveries']:,} / {live['expected']:,}; "
        f"{live['misses']} | no miss: {_met(live['misses'] == 0 and live['expected'] > 0)} |",
        f"| subscribers that missed any | {live['subscribers_missing_some']} | 0 |",
        f"| worst single comment's p99 ms | {_num(live['worst_comment_p99_ms'])} | |",
        f"| streams still open at the end; closed early | {live['open_at_end']:,}; "
        f"{live['closed_early'] or 0} | |",
        f"| time to open them all | {live['connect_seconds']:.1f} s | |",
        f"| driver CPU / machine busy: connecting; delivering | {_cpu(live['connecting'])}; "
        f"{_cpu(live['delivering'])} | |",
        f"| driver memory; API workers' memory before / after | "
        f"{_num(live['driver_max_rss_mib'])} MiB; {_num(memory['before'])} / "
        f"{_num(memory['after'])} MiB | |",
        "",
        f"Events seen in all: {live['events']}.",
        "",
    ]
