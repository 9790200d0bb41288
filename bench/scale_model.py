"""What 1, 2, 4 and 8 log partitions would take: a simulation fed by measured lock holds.

Each partition is one PostgreSQL primary with its own log and its own append lock. Its
group committer is a server: when the lock frees, everything waiting (up to 64) goes
as one batch and holds the lock `fixed + per_post * batch` milliseconds, the line
`append_lock.py` measures on this machine. Posts arrive as a Poisson stream; each goes
to a thread drawn from a Zipf law over the publication's threads (a few hot stories,
a long tail), and a thread's partition is fixed by a hash of its id. For each partition
count the simulation finds the highest rate at which every partition still answers 99%
of posts within the latency budget, and says how many cores the rest of the stack would
need at that rate (`--cpu-ms-per-post`: API, fold workers and PostgreSQL together, as
`run.py` measures them).

    .venv/bin/python bench/append_lock.py > /tmp/lock.json
    .venv/bin/python bench/scale_model.py --lock /tmp/lock.json
    .venv/bin/python bench/scale_model.py --lock /tmp/lock.json --per-post-factor 0.5
"""

import argparse
import json
import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path

MAX_BATCH = 64


@dataclass(frozen=True)
class Hold:
    fixed_ms: float
    per_post_ms: float

    def of(self, batch: int) -> float:
        return self.fixed_ms + self.per_post_ms * batch


@dataclass(frozen=True)
class Outcome:
    p50_ms: float
    p99_ms: float
    mean_batch: float
    stable: bool


def simulate(rate: float, hold: Hold, seconds: float, rng: random.Random) -> Outcome:
    """One partition's group committer under Poisson arrivals of `rate` posts/s."""
    arrivals: deque[float] = deque()
    t, end = 0.0, seconds * 1000
    while t < end:
        t += rng.expovariate(rate / 1000)
        arrivals.append(t)
    latencies: list[float] = []
    batches = 0
    free_at = 0.0
    while arrivals:
        start = max(free_at, arrivals[0])
        batch = []
        while arrivals and arrivals[0] <= start and len(batch) < MAX_BATCH:
            batch.append(arrivals.popleft())
        free_at = start + hold.of(len(batch))
        latencies.extend(free_at - a for a in batch)
        batches += 1
    latencies.sort()
    return Outcome(
        p50_ms=latencies[len(latencies) // 2],
        p99_ms=latencies[int(len(latencies) * 0.99)],
        mean_batch=len(latencies) / batches,
        # Past full batches back to back the queue only grows, however short the run.
        stable=rate < MAX_BATCH / hold.of(MAX_BATCH) * 1000,
    )


def partition_shares(partitions: int, threads: int, zipf: float, rng: random.Random) -> list[float]:
    """Each partition's share of posts: threads' Zipf weights summed by a random hash."""
    weights = [1 / (rank**zipf) for rank in range(1, threads + 1)]
    shares = [0.0] * partitions
    for weight in weights:
        shares[rng.randrange(partitions)] += weight
    total = sum(shares)
    return [share / total for share in shares]


def highest_rate(
    partitions: int, hold: Hold, budget_ms: float, shares: list[float], seconds: float
) -> tuple[float, Outcome]:
    """The highest total rate whose busiest partition keeps p99 within the budget."""
    busiest = max(shares)
    low, high = 10.0, 1000 / hold.per_post_ms / busiest * 1.2
    best = Outcome(0, 0, 0, True)
    for _ in range(14):
        rate = (low + high) / 2
        outcome = simulate(rate * busiest, hold, seconds, random.Random(partitions))
        if outcome.stable and outcome.p99_ms <= budget_ms:
            low, best = rate, outcome
        else:
            high = rate
    return low, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, help="append_lock.py's JSON (else --fixed-ms...)")
    parser.add_argument("--fixed-ms", type=float, default=0.55)
    parser.add_argument("--per-post-ms", type=float, default=0.81)
    parser.add_argument("--budget-ms", type=float, default=100.0, help="p99 of the lock's part")
    parser.add_argument("--threads", type=int, default=20_000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--cpu-ms-per-post", type=float, default=3.46)
    parser.add_argument("--seconds", type=float, default=20.0, help="simulated per trial")
    parser.add_argument("--partitions", default="1,2,4,8")
    parser.add_argument(
        "--per-post-factor", type=float, default=1.0, help="what if a post held the lock x times"
    )
    args = parser.parse_args()
    if args.lock:
        measured = json.loads(args.lock.read_text())
        hold = Hold(measured["hold_ms_fixed"], measured["hold_ms_per_post"])
    else:
        hold = Hold(args.fixed_ms, args.per_post_ms)
    hold = Hold(hold.fixed_ms, hold.per_post_ms * args.per_post_factor)
    rows = []
    for count in (int(p) for p in args.partitions.split(",")):
        shares = partition_shares(count, args.threads, args.zipf, random.Random(7))
        rate, outcome = highest_rate(count, hold, args.budget_ms, shares, args.seconds)
        rows.append(
            {
                "partitions": count,
                "busiest_share": round(max(shares), 3),
                "posts_per_second": round(rate),
                "busiest_p50_ms": round(outcome.p50_ms, 1),
                "busiest_p99_ms": round(outcome.p99_ms, 1),
                "busiest_mean_batch": round(outcome.mean_batch, 1),
                "cores_for_the_rest": round(rate * args.cpu_ms_per_post / 1000, 1),
            }
        )
    print(json.dumps({"hold": hold.__dict__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
