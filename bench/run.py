"""Side-by-side benchmark of the real stack: Chorus over HTTP, its peer Isso, and the machine.

Starts a PostgreSQL database (`chorus_bench_run`), a flushed Redis database (14),
`chorus api --workers N` and M `chorus worker` processes (bench/stack.py), drives the API
from a separate process (bench/load.py) and writes a markdown report to stdout and
bench/results/latest.md, with the raw figures in bench/results/latest.json. Every figure
stands next to its target and the machine's ceiling measured in the same run
(bench/ceilings.py).

    .venv/bin/python bench/run.py                 # everything, ~10 min
    .venv/bin/python bench/run.py --quick         # scaled down, < 2 min: a smoke run
    .venv/bin/python bench/run.py --only posting,lag --rate 300
    .venv/bin/python bench/run.py --only ceilings,hot,hot-peer --name hot-story  # issue 11
    .venv/bin/python bench/run.py --only sustained --moderation-words 500  # issue 12
    .venv/bin/python bench/run.py --quick --database chorus_bench_mine \
        --redis-url redis://127.0.0.1:6379/11   # beside another run
"""

import argparse
import contextlib
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import httpx
import redis
import sqlalchemy as sa
from drivers import SETTLE_SECONDS, Json, drive, log, wait_for_thread
from fold_throughput import write_log
from hot_story import HOT_FULL, HOT_QUICK, HotScale, hot, hot_peer, hot_section
from page_reads import build_threads, cpu_ticks
from stack import JWT_SECRET, REPO, Services, Stack, running_stack
from workload import COMMENTS, REPLY_SHARE, SEED

from shared.db import create_db_engine
from shared.ids import new_id
from shared.store import EventStore
from shared.tokens import mint_token

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
Results = dict[str, Any]
REBUILD_STREAMS = 20

TARGET_POSTS_PER_S = 1000.0
TARGET_POST_P99_MS = 100.0
TARGET_LAG_P99_MS = 1000.0
TARGET_LAG_RATE = 500.0
TARGET_PAGE_P99_MS = 50.0


@dataclass(frozen=True)
class Scale:
    comments: int
    clients: list[int]
    sustained_seconds: float
    sustained_threads: int
    lag_seconds: float
    lag_rate: float
    lag_threads: int
    read_sizes: list[int]
    read_requests: int
    read_warmup: int
    walk_repeats: int
    rebuild_events: int
    ceiling_seconds: float
    hot: HotScale = HOT_FULL


FULL = Scale(COMMENTS, [1, 16, 64], 20, 50, 15, 500, 5, [10, 1_000, 10_000], 200, 20, 10,
             100_000, 5)  # fmt: skip
QUICK = Scale(100, [1, 16, 64], 3, 10, 3, 100, 5, [10, 100, 1_000], 20, 3, 2, 3_000, 0.5, HOT_QUICK)


# --- scenarios -------------------------------------------------------------------------


def ceilings(stack: Stack, scale: Scale, results: Results) -> None:
    try:
        from ceilings import measure
    except ImportError as exc:
        log(f"ceilings skipped: bench/ceilings.py is not importable ({exc})")
        results["ceilings"] = {"skipped": str(exc)}
        return
    found = measure(stack.pg_dsn, stack.redis_url, scale.ceiling_seconds, stack.api_workers)
    results["ceilings"] = found


def posting(stack: Stack, scale: Scale, results: Results) -> None:
    """The peer workload: a fresh thread per concurrency level, the plan posted in order."""
    levels: dict[str, Json] = {}
    run = new_id()[-6:]
    for clients in scale.clients:
        thread_id = f"workload-{clients}-{run}"
        log(f"posting: {scale.comments} planned comments, {clients} clients")
        got = drive(
            {
                "mode": "workload",
                "base": stack.base_url,
                "secret": JWT_SECRET,
                "thread_id": thread_id,
                "clients": clients,
                "comments": scale.comments,
                "reply_share": REPLY_SHARE,
                "seed": SEED,
            }
        )
        thread = wait_for_thread(stack.base_url, thread_id, got["max_version"])
        got["thread_id"] = thread_id
        got["shown_count"] = thread.get("comment_count")
        got["count_matches"] = thread.get("comment_count") == got["accepted"]
        levels[str(clients)] = got
    first = levels[str(scale.clients[0])]["thread_id"]
    log(f"posting: reading the {scale.comments}-comment thread (first page, whole walk)")
    page = drive(
        {
            "mode": "reads",
            "base": stack.base_url,
            "n": scale.read_requests,
            "warmup": scale.read_warmup,
            "requests": [
                {"label": "page 1", "method": "GET", "path": f"/v1/threads/{first}/comments"}
            ],
        }
    )
    walked = drive(
        {
            "mode": "walk",
            "base": stack.base_url,
            "thread_id": first,
            "repeats": scale.walk_repeats,
            "limit": 50,
            "replies": 10,
        }
    )
    results["posting"] = {"levels": levels, "read_page": page["rows"]["page 1"], "walk": walked}


def sustained(stack: Stack, scale: Scale, results: Results) -> None:
    log(f"sustained: 64 clients, {scale.sustained_seconds:g} s, {scale.sustained_threads} threads")
    got = drive(
        {
            "mode": "sustained",
            "base": stack.base_url,
            "secret": JWT_SECRET,
            "clients": 64,
            "seconds": scale.sustained_seconds,
            "warmup": 2.0,
            "threads": scale.sustained_threads,
            "reply_share": REPLY_SHARE,
            "run": new_id()[-6:],
        }
    )
    expected: dict[str, int] = got.pop("comments_by_thread")
    deadline = time.monotonic() + SETTLE_SECONDS
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        while True:
            answer = client.post("/v1/counts", json={"thread_ids": list(expected)}).json()
            if answer["counts"] == expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    got["count_matches"] = answer["counts"] == expected
    got["posted_in_all"] = sum(expected.values())
    results["sustained"] = got


def lag(stack: Stack, scale: Scale, results: Results) -> None:
    log(f"lag: {scale.lag_rate:g} posts/s open loop for {scale.lag_seconds:g} s")
    results["lag"] = drive(
        {
            "mode": "open",
            "base": stack.base_url,
            "secret": JWT_SECRET,
            "rate": scale.lag_rate,
            "seconds": scale.lag_seconds,
            "threads": scale.lag_threads,
            "poll_ms": 50,
            "page_limit": 50,
            "connections": 256,
            "settle_seconds": SETTLE_SECONDS,
            "run": new_id()[-6:],
        }
    )
    results["lag"]["fold_workers"] = len(stack.workers)


def reads(stack: Stack, scale: Scale, results: Results) -> None:
    log(f"reads: building threads of {scale.read_sizes} comments and 100 for counts")
    with contextlib.redirect_stdout(sys.stderr):
        threads = build_threads(stack.database_url, scale.read_sizes, random.Random(7))
    requests: list[Json] = [{"label": "GET /healthz", "method": "GET", "path": "/healthz"}]
    for size, thread_id in threads.by_size.items():
        for sort in ("oldest", "newest", "top"):
            requests.append(
                {
                    "label": f"{size:,} comments: page 1, sort={sort}",
                    "method": "GET",
                    "path": f"/v1/threads/{thread_id}/comments",
                    "params": {"sort": sort},
                }
            )
    ids = threads.all_ids[:100]
    counts = {"thread_ids": ids}
    label = f"POST /v1/counts, {len(ids)} threads"
    requests.append({"label": label, "method": "POST", "path": "/v1/counts", "json": counts})
    results["reads"] = drive(
        {
            "mode": "reads",
            "base": stack.base_url,
            "n": scale.read_requests,
            "warmup": scale.read_warmup,
            "requests": requests,
        }
    )


def rebuild(stack: Stack, scale: Scale, results: Results) -> None:
    """`chorus rebuild` over at least `rebuild_events` events, fold workers stopped."""
    stack.stop_workers()
    engine = create_db_engine(stack.database_url)
    count = sa.text("SELECT count(*) FROM events")
    with engine.connect() as conn:
        before = int(conn.execute(count).scalar_one())
    if before < scale.rebuild_events:
        log(f"rebuild: appending {scale.rebuild_events - before:,} events through the store")
        missing = scale.rebuild_events - before + REBUILD_STREAMS  # write_log rounds down
        write_log(EventStore(engine), REBUILD_STREAMS, missing, random.Random(1), 0.3)
    with engine.connect() as conn:
        in_log = int(conn.execute(count).scalar_one())
    engine.dispose()
    log(f"rebuild: chorus rebuild over {in_log:,} events")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "rebuild"],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    found = re.search(r"rebuilt threads: (\d+) events in (\d+) threads \((\d+) dead", done.stdout)
    if found is None:
        raise RuntimeError(f"unexpected `chorus rebuild` output: {done.stdout[-2000:]}")
    events, threads, dead = (int(g) for g in found.groups())
    results["rebuild"] = {
        "events_in_log": in_log,
        "events": events,
        "threads": threads,
        "dead_lettered": dead,
        "seconds": seconds,
        "events_per_s": events / seconds,
    }


def peer(scale: Scale, results: Results) -> None:
    try:
        from isso_peer import run as run_isso
    except ImportError as exc:
        log(f"peer skipped: bench/isso_peer.py is not importable ({exc})")
        results["peer"] = {"skipped": str(exc)}
        return
    log(f"peer: Isso, {scale.comments} comments at {scale.clients} clients")
    results["peer"] = run_isso(scale.clients, scale.comments, REPLY_SHARE, SEED)


STACK_SCENARIOS: dict[str, Callable[[Stack, Scale, Results], None]] = {
    "ceilings": ceilings,
    "posting": posting,
    "sustained": sustained,
    "lag": lag,
    "reads": reads,
    "hot": lambda stack, scale, results: hot(stack, scale.hot, results),
    "rebuild": rebuild,  # last: it stops the fold workers
}
SCENARIOS = [*STACK_SCENARIOS, "peer", "hot-peer"]


# --- the report ------------------------------------------------------------------------


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def share(part: float | None, whole: float | None) -> str:
    if part is None or not whole:
        return "-"
    return f"{part / whole:.0%}"


def ratio(chorus: float | None, isso: float | None) -> str:
    if chorus is None or not isso:
        return "-"
    return f"{chorus / isso:.2f}" if chorus / isso >= 0.1 else f"{chorus / isso:.3f}"


def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None:
        return "-"
    met = value >= target if higher_is_better else value < target
    return "met" if met else "**not met**"


def refusals(refused: dict[str, int]) -> str:
    return ", ".join(f"{n}x {status}" for status, n in refused.items()) or "0"


def cpu(got: Json) -> str:
    return f"{got['client_cpu']:.0%} / {got['machine_busy']:.0%}"


def ceilings_section(results: Results) -> list[str]:
    found = results.get("ceilings")
    if not found:
        return []
    lines = ["## Machine ceilings (same run)", ""]
    if "skipped" in found:
        return [*lines, f"Not measured: {found['skipped']}", ""]
    names = {
        "pg_commits_per_s_1": "PostgreSQL single-row commits/s, 1 connection",
        "pg_commits_per_s_4": "PostgreSQL single-row commits/s, 4 connections",
        "redis_ops_per_s": "Redis SET/GET round trips/s, 1 client",
        "redis_pipelined_ops_per_s": "Redis SET/GET ops/s, 1 client, pipelined",
        "fastapi_noio_posts_per_s": "FastAPI POST with no I/O (same uvicorn setup), requests/s",
    }
    lines += ["| ceiling | value |", "|---|---:|"]
    lines += [f"| {names.get(key, key)} | {num(value)} |" for key, value in found.items()]
    return [*lines, ""]


def posting_section(results: Results, scale: Scale) -> list[str]:
    found = results.get("posting")
    if not found:
        return []
    limits = results.get("ceilings", {})
    pg, noio = limits.get("pg_commits_per_s_4"), limits.get("fastapi_noio_posts_per_s")
    lines = [
        f"## Posting: the peer workload ({scale.comments:,} comments, "
        f"{REPLY_SHARE:.0%} replies, a fresh thread per level)",
        "",
        "Closed loop: each client posts the next planned comment as soon as its previous one "
        "is answered; a reply whose parent is not acknowledged yet waits for it (not timed). "
        "posts/s = accepted / wall time of the level. Fold workers run meanwhile.",
        "",
        "| clients | posts/s | p50 ms | p99 ms | accepted | refused | count shown = accepted "
        "| client CPU / machine busy | target (>= 1,000/s at 64, p99 < 100 ms) "
        "| of PG commits/s (4 conns) | of FastAPI no-I/O |",
        "|---:|---:|---:|---:|---:|---|---|---:|---|---:|---:|",
    ]
    for clients, got in found["levels"].items():
        target = "-"
        if clients == "64":
            target = (
                f"{verdict(got['posts_per_s'], TARGET_POSTS_PER_S, True)} / "
                f"{verdict(got['p99_ms'], TARGET_POST_P99_MS, False)}"
            )
        lines.append(
            f"| {clients} | {num(got['posts_per_s'])} | {num(got['p50_ms'], 1)} "
            f"| {num(got['p99_ms'], 1)} | {got['accepted']:,} | {refusals(got['refused'])} "
            f"| {'yes' if got['count_matches'] else 'NO (' + str(got['shown_count']) + ')'} "
            f"| {cpu(got)} | {target} | {share(got['posts_per_s'], pg)} "
            f"| {share(got['posts_per_s'], noio)} |"
        )
    page, walk = found["read_page"], found["walk"]
    accepted = found["levels"][str(scale.clients[0])]["accepted"]
    complete = walk["comments"] == [accepted]
    lines += [
        "",
        f"Reading the thread the 1-client level posted: first page (`limit=20`, `replies=3`) "
        f"p50 {num(page['p50_ms'], 1)} ms, p99 {num(page['p99_ms'], 1)} ms; the whole thread "
        f"by every page and reply cursor (`limit=50`, `replies=10`, "
        f"{walk['requests_per_walk']:.0f} request(s)) p50 {num(walk['p50_ms'], 1)} ms, "
        f"p99 {num(walk['p99_ms'], 1)} ms; the walk found {walk['comments']} comments "
        f"({'all' if complete else 'NOT all'} of the {accepted:,} accepted).",
    ]
    return [*lines, ""]


def sustained_section(results: Results, scale: Scale) -> list[str]:
    got = results.get("sustained")
    if not got:
        return []
    limits = results.get("ceilings", {})
    return [
        f"## Posting sustained: 64 clients, {scale.sustained_seconds:g} s, "
        f"{scale.sustained_threads} threads",
        "",
        f"2 s warm-up, then only posts started and finished in the window count; "
        f"{REPLY_SHARE:.0%} reply to an earlier comment of the same thread. "
        f"{got['posted_in_all']:,} comments posted in all; the counts of every thread "
        f"(`POST /v1/counts`, after the folds) "
        f"{'equal' if got['count_matches'] else 'do NOT equal'} the accepted posts.",
        "",
        "| posts/s | p50 ms | p99 ms | refused | client CPU / machine busy "
        "| target (>= 1,000/s, p99 < 100 ms) | of PG commits/s (4 conns) | of FastAPI no-I/O |",
        "|---:|---:|---:|---|---:|---|---:|---:|",
        f"| {num(got['posts_per_s'])} | {num(got['p50_ms'], 1)} | {num(got['p99_ms'], 1)} "
        f"| {refusals(got['refused'])} | {cpu(got)} "
        f"| {verdict(got['posts_per_s'], TARGET_POSTS_PER_S, True)} / "
        f"{verdict(got['p99_ms'], TARGET_POST_P99_MS, False)} "
        f"| {share(got['posts_per_s'], limits.get('pg_commits_per_s_4'))} "
        f"| {share(got['posts_per_s'], limits.get('fastapi_noio_posts_per_s'))} |",
        "",
    ]


def lag_section(results: Results) -> list[str]:
    got = results.get("lag")
    if not got:
        return []
    limits = results.get("ceilings", {})
    lag = got["lag"]
    return [
        f"## Visibility lag: open loop at {got['target_rate']:g} posts/s, "
        f"{got['fold_workers']} fold workers",
        "",
        "Posts are sent on a fixed schedule whatever the answers (top-level comments, spread "
        "over the threads); one poller per thread reads `GET /v1/threads/{id}/comments"
        "?sort=newest&limit=50&replies=0` every 50 ms. Lag = arrival of the first poll "
        "answer showing the comment (its id on the page, or the page's `version` at or past "
        "the comment's, once it has scrolled off) minus the time its POST was sent; the poll "
        f"period adds up to 50 ms. {got['seen_by_id']:,} of {got['seen']:,} were seen by "
        f"id; {got['never_seen']} accepted posts were never seen within "
        f"{SETTLE_SECONDS:g} s.",
        "",
        "| offered posts/s | accepted posts/s | lag p50 ms | lag p99 ms | POST p50 / p99 ms "
        "| poll p50 / p99 ms | refused | client CPU / machine busy "
        f"| target (lag p99 < 1 s at {TARGET_LAG_RATE:g}/s) | offered, of PG commits/s |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---|---:|",
        f"| {num(got['offered_rate'])} | {num(got['accepted_rate'])} | {num(lag['p50_ms'])} "
        f"| {num(lag['p99_ms'])} | {num(got['post']['p50_ms'], 1)} / "
        f"{num(got['post']['p99_ms'], 1)} | {num(got['poll']['p50_ms'], 1)} / "
        f"{num(got['poll']['p99_ms'], 1)} | {refusals(got['refused'])} | {cpu(got)} "
        f"| {verdict(lag['p99_ms'], TARGET_LAG_P99_MS, False)}"
        f"{'' if got['target_rate'] >= TARGET_LAG_RATE else ' (at a lower rate)'} "
        f"| {share(got['offered_rate'], limits.get('pg_commits_per_s_4'))} |",
        "",
    ]


def reads_section(results: Results) -> list[str]:
    got = results.get("reads")
    if not got:
        return []
    rows: dict[str, Json] = got["rows"]
    floor = rows["GET /healthz"]["p50_ms"]
    lines = [
        "## Page reads",
        "",
        "Threads built through the store (40% top-level, ~0.6 likes a comment, 3% deleted), "
        "folded, ANALYZEd; one keep-alive connection, one request at a time, round-robin. "
        "Page 1 = default `limit=20`, `replies=3`. The floor is `GET /healthz` (HTTP and "
        f"the framework, no database). Client CPU / machine busy: {cpu(got)}.",
        "",
        "| request | p50 ms | p99 ms | KiB | non-2xx | target (10,000: p99 < 50 ms) "
        "| floor p50 / this p50 |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for label, row in rows.items():
        target = "-"
        if label.startswith("10,000 comments"):
            target = verdict(row["p99_ms"], TARGET_PAGE_P99_MS, False)
        lines.append(
            f"| {label} | {num(row['p50_ms'], 2)} | {num(row['p99_ms'], 2)} "
            f"| {row['bytes'] / 1024:.1f} | {row['errors']} | {target} "
            f"| {share(floor, row['p50_ms'])} |"
        )
    return [*lines, ""]


def rebuild_section(results: Results) -> list[str]:
    got = results.get("rebuild")
    if not got:
        return []
    return [
        "## Rebuild",
        "",
        f"`chorus rebuild` (a new process: its start-up is included) over "
        f"{got['events_in_log']:,} events in the log, fold workers stopped: "
        f"**{num(got['events_per_s'])} events/s** ({got['events']:,} events in "
        f"{got['threads']:,} threads in {got['seconds']:.1f} s, "
        f"{got['dead_lettered']} dead-lettered).",
        "",
    ]


def peer_section(results: Results) -> list[str]:
    isso = results.get("peer")
    if not isso:
        return []
    lines = ["## Chorus / Isso, same workload", ""]
    if "skipped" in isso:
        return [*lines, f"Not measured: {isso['skipped']}", ""]
    chorus = results.get("posting", {})
    lines += [
        f"Isso {isso['version']} (bench/isso_peer.py: its own process, SQLite, guard off). "
        "posts/s: higher is better; latencies: lower is better (ratio < 1 = Chorus faster). "
        "Isso answers the whole thread in one `GET /?uri=`; Chorus serves pages, so both its "
        "first page (20 top-level comments, 3 replies per level) and a walk of every page "
        "and reply cursor (`limit=50`, `replies=10`) are shown, on the thread posted by "
        "1 client (Isso reads that one too).",
        "",
        "| figure | Chorus | Isso | Chorus / Isso |",
        "|---|---:|---:|---:|",
    ]
    for clients, theirs in isso["posts"].items():
        ours = chorus.get("levels", {}).get(str(clients), {})
        for key, label, digits in (
            ("posts_per_s", "posts/s", 0),
            ("p50_ms", "post p50 ms", 1),
            ("p99_ms", "post p99 ms", 1),
        ):
            lines.append(
                f"| {label}, {clients} clients | {num(ours.get(key), digits)} "
                f"| {num(theirs[key], digits)} | {ratio(ours.get(key), theirs[key])} |"
            )
    read = isso["read"]
    comments = read["comments"]
    for source, name in ((chorus.get("read_page"), "first page"), (chorus.get("walk"), "walk")):
        for key in ("p50_ms", "p99_ms"):
            ours = None if source is None else source[key]
            lines.append(
                f"| read {comments:,}-comment thread {key[:3]} ms: Chorus {name} | {num(ours, 1)} "
                f"| {num(read[key], 1)} | {ratio(ours, read[key])} |"
            )
    walk = chorus.get("walk")
    if walk:
        lines += [
            "",
            f"The Chorus walk made {walk['requests_per_walk']:.0f} request(s) and found "
            f"{walk['comments']} comments (Isso's response: {comments:,}).",
        ]
    return [*lines, ""]


def checked_out_commit() -> str:
    """The commit checked out, read from the files rather than by running `git` (others use
    the repo). In a `git worktree`, `.git` is a file naming the worktree's git directory,
    whose `commondir` holds the branches."""
    git = REPO / ".git"
    if git.is_file():
        git = (REPO / git.read_text().split(":", 1)[1].strip()).resolve()
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head
    common = git
    if (git / "commondir").exists():
        common = (git / (git / "commondir").read_text().strip()).resolve()
    for base in (git, common):
        if (base / head[5:]).exists():
            return (base / head[5:]).read_text().strip()
    packed = common / "packed-refs"
    if packed.exists():
        for line in packed.read_text().splitlines():
            if line.endswith(f" {head[5:]}"):
                return line.split()[0]
    return head


def machine(command: str) -> Json:
    def first(path: str, prefix: str) -> str:
        with open(path) as source:
            return next(
                (ln.split(":", 1)[1].strip() for ln in source if ln.startswith(prefix)), "?"
            )

    return {
        "command": command,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(first("/proc/meminfo", "MemTotal").split()[0]) / 2**20, 1),
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "machine_busy_before": idle_check(),
        "python": platform.python_version(),
        "commit": checked_out_commit(),
    }


def idle_check(seconds: float = 2.0) -> float:
    """How busy the machine is before we start anything: others' load makes figures noisy."""
    before = cpu_ticks()
    time.sleep(seconds)
    busy, total = (b - a for a, b in zip(before, cpu_ticks(), strict=True))
    return busy / total if total else 0.0


def services_versions(stack: Stack) -> Json:
    engine = create_db_engine(stack.database_url)
    with engine.connect() as conn:
        pg = conn.exec_driver_sql("SHOW server_version").scalar_one()
    engine.dispose()
    client = redis.Redis.from_url(stack.redis_url)
    version = client.info("server")["redis_version"]
    client.close()
    return {"postgresql": pg, "redis": version}


def report(results: Results, scale: Scale) -> str:
    meta = results["meta"]
    lines = [
        "# Chorus benchmark: the real stack over HTTP",
        "",
        f"`{meta['command']}` at {meta['started']}, commit `{meta['commit']}`"
        f"{' (QUICK: scaled down, a smoke run)' if meta['quick'] else ''}.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {meta['cpu']}, {meta['cores']} cores |",
        f"| memory | {meta['memory_gib']} GiB |",
        f"| before the run | machine {meta['machine_busy_before']:.0%} busy over 2 s, "
        f"load average {' '.join(meta['load_average'])} |",
        f"| PostgreSQL / Redis | {meta.get('postgresql', '-')} / {meta.get('redis', '-')} |",
        f"| Python | {meta['python']} |",
        f"| stack | `chorus api --workers {meta['api_workers']}`, "
        f"{meta['fold_workers']} `chorus worker`, PostgreSQL database `{meta['database']}`, "
        f"Redis `{meta['redis_url']}`, rate limits off |",
        "",
        "Client, API, workers, PostgreSQL and Redis share the machine; the load driver is "
        "its own process (bench/load.py, aiohttp on uvloop) and its CPU (share of one core) "
        "is shown with the machine's busy share. One run: noisy.",
        "",
    ]
    lines += ceilings_section(results)
    lines += posting_section(results, scale)
    lines += sustained_section(results, scale)
    lines += lag_section(results)
    lines += reads_section(results)
    lines += rebuild_section(results)
    lines += peer_section(results)
    lines += hot_section(results, scale.hot)
    if results["errors"]:
        lines += ["## Errors", ""]
        lines += [f"- {name}: `{error}`" for name, error in results["errors"].items()]
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------


def moderate(stack: Stack, words: int) -> None:
    """Word lists the posts are checked against: `words` banned and as many suspect words,
    none of which the bench's bodies contain, so every post is checked and published."""
    token = mint_token(JWT_SECRET, sub="bench-admin", name="Admin", roles=["admin"])
    settings = {
        "banned_words": [f"zqban{i}" for i in range(words)],
        "suspect_words": [f"zqsus{i}" for i in range(words)],
        "max_links": 5,
    }
    answer = httpx.put(
        f"{stack.base_url}/v1/moderation/settings",
        json=settings,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    log(f"moderation: {words} banned and {words} suspect words, at most 5 links")


def terminate(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # unwinds through running_stack: everything is stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled down: a smoke run < 2 min")
    parser.add_argument("--only", default="", help=f"comma-separated, of {','.join(SCENARIOS)}")
    parser.add_argument("--rate", type=float, help="visibility lag: posts/s offered")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--fold-workers", type=int, default=2, help="chorus worker processes")
    parser.add_argument(
        "--moderation-words",
        type=int,
        default=0,
        help="before the scenarios, an admin sets this many banned and as many suspect words "
        "(none in the bench's bodies) and a link limit: every post is checked against them",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where latest.md and latest.json go"
    )
    parser.add_argument(
        "--name", default="latest", help="the report's name: NAME.md and NAME.json in --out"
    )
    defaults = Services()
    parser.add_argument(
        "--postgres-url",
        default=defaults.postgres_url,
        help="an existing database on the PostgreSQL server the bench creates its own on",
    )
    parser.add_argument(
        "--database",
        default=defaults.database,
        help="the database to create, use and drop (any of that name is dropped first)",
    )
    parser.add_argument(
        "--redis-url", default=defaults.redis_url, help="a Redis database to flush and use"
    )
    args = parser.parse_args()
    services = Services(args.postgres_url, args.database, args.redis_url)
    scale = QUICK if args.quick else FULL
    if args.rate:
        scale = replace(scale, lag_rate=args.rate)
    chosen = set(args.only.split(",")) - {""} or set(SCENARIOS)
    if unknown := chosen - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {SCENARIOS}")
    signal.signal(signal.SIGTERM, terminate)
    command = " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    meta = machine(command) | {
        "quick": args.quick,
        "api_workers": args.api_workers,
        "fold_workers": args.fold_workers,
        "moderation_words": args.moderation_words,
        "database": services.database,
        "redis_url": services.redis_url,
    }
    results: Results = {"meta": meta, "scale": asdict(scale), "errors": {}}

    def attempt(name: str, scenario: Callable[[], None]) -> None:
        started = time.perf_counter()
        try:
            scenario()
        except Exception as exc:  # one failed scenario should not hide the others' figures
            log(f"{name} failed: {exc!r}")
            results["errors"][name] = repr(exc)
        log(f"{name}: {time.perf_counter() - started:.0f} s")

    on_stack = [name for name in STACK_SCENARIOS if name in chosen]
    if on_stack:
        with running_stack(args.api_workers, args.fold_workers, services) as stack:
            meta |= services_versions(stack)
            if args.moderation_words:
                moderate(stack, args.moderation_words)
            for name in on_stack:
                attempt(name, lambda name=name: STACK_SCENARIOS[name](stack, scale, results))  # type: ignore[misc]
    if "peer" in chosen:
        attempt("peer", lambda: peer(scale, results))
    if "hot-peer" in chosen:
        attempt("hot-peer", lambda: hot_peer(scale.hot, results))
    text = report(results, scale)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text(text)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    if results["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
