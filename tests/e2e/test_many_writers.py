"""Many writers: 50 clients post 100 times each into 5 threads, with posting limits on.

Two `chorus api` processes share one PostgreSQL database and one Redis; each client
alternates between them, so the posting limits are enforced across processes. The limits
are set tight (below) so that most posts meet one of them: every user may have at most
`POSTS_PER_HOUR` posts accepted however fast the machine is, and the clients, five to a
client address (`X-Forwarded-For`, which uvicorn trusts from 127.0.0.1), also meet the
per-address limit. A client keeps posting when refused, as a hostile one would.

Half of the posts reply to a random comment of the same thread that an earlier answer
acknowledged, and a few requests are bad on purpose. Every request carries a unique tag in
its body, so the log can be checked against the answers: each 201's comment is in the log
exactly once and nothing refused (429 or any other 4xx) appended anything. Meanwhile the
thread projection is folded in small batches, as a worker would; at the end it must be at
the head of every thread, equal a clean fold of the log and count the accepted replies.
"""

import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.folding import fold_thread
from shared.projection_tables import LIVE
from shared.store import STREAMS, EventStore, StoredEvent
from shared.tokens import mint_token
from tests.e2e.conftest import JWT_SECRET, free_port, running_api
from tests.projections import clean_fold, snapshot

CLIENTS = 50
POSTS_PER_CLIENT = 100
THREADS = [f"writers-{n}" for n in range(5)]
CLIENTS_PER_ADDRESS = 5
REPLY_SHARE = 0.5
BAD_SHARE = 0.06

POSTS_BURST = 6  # per user, in any 10 s
POSTS_PER_MINUTE = 15  # per user
POSTS_PER_HOUR = 20  # per user: a cap on accepted posts that no timing can lift
POSTS_PER_MINUTE_PER_IP = 60  # five users share an address: 5 x 15 > 60
LIMITS = {
    "CHORUS_RATE_LIMIT_ENABLED": "true",
    "CHORUS_RATE_LIMIT_POSTS_BURST": str(POSTS_BURST),
    "CHORUS_RATE_LIMIT_POSTS_PER_MINUTE": str(POSTS_PER_MINUTE),
    "CHORUS_RATE_LIMIT_POSTS_PER_HOUR": str(POSTS_PER_HOUR),
    "CHORUS_RATE_LIMIT_POSTS_PER_MINUTE_PER_IP": str(POSTS_PER_MINUTE_PER_IP),
    "FORWARDED_ALLOW_IPS": "127.0.0.1",
}

# Each bad request, and what it may be answered with. A refusal that the route decides
# after the posting limit was checked may meet the limit first.
BAD_KINDS: dict[str, set[tuple[int, str]]] = {
    "empty_body": {(422, "body_empty"), (429, "rate_limited")},
    "unknown_parent": {(422, "parent_not_found"), (429, "rate_limited")},
    "foreign_parent": {(422, "parent_not_found"), (429, "rate_limited")},
    "too_many_chars": {(422, "body_too_long"), (429, "rate_limited")},
    "too_many_bytes": {(413, "body_too_large")},
    "forged_token": {(401, "invalid_token")},
}
GOOD_ANSWERS = {(201, ""), (429, "rate_limited")}
TAG = re.compile(r"^\s*(w\d{2}\.\d{3}) ")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


@dataclass(frozen=True)
class Outcome:
    """One request and its answer."""

    tag: str
    kind: str  # "post", "reply" or one of BAD_KINDS
    thread: str
    parent: str | None
    user: str
    address: str
    status: int
    code: str
    answer: dict[str, Any]


@dataclass
class Acknowledged:
    """Comments some client was told were accepted, per thread: what replies may answer."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_thread: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in THREADS})

    def add(self, thread: str, comment_id: str) -> None:
        with self.lock:
            self.by_thread[thread].append(comment_id)

    def pick(self, rng: random.Random, thread: str, *, other: bool = False) -> str | None:
        with self.lock:
            if other:
                ids = [c for t, cs in self.by_thread.items() if t != thread for c in cs]
            else:
                ids = list(self.by_thread[thread])
        return rng.choice(ids) if ids else None


class Writer:
    """One client: its own user, an address shared with four others, a seeded mix."""

    def __init__(self, number: int, apis: list[str], acknowledged: Acknowledged) -> None:
        self.number = number
        self.apis = apis
        self.acknowledged = acknowledged
        self.rng = random.Random(number)
        self.user = f"writer-{number:02d}"
        self.address = f"198.51.100.{number // CLIENTS_PER_ADDRESS + 1}"
        token = mint_token(JWT_SECRET, sub=self.user, name=f"Writer {number}")
        self.headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": self.address}

    def run(self, start: threading.Barrier) -> list[Outcome]:
        outcomes = []
        with httpx.Client(timeout=60) as http:
            start.wait(timeout=60)
            for n in range(POSTS_PER_CLIENT):
                outcomes.append(self.send(http, n))
        return outcomes

    def send(self, http: httpx.Client, n: int) -> Outcome:
        tag = f"w{self.number:02d}.{n:03d}"
        thread = self.rng.choice(THREADS)
        kind = "post"
        parent: str | None = None
        body = f"{tag} *{self.user}* says {self.rng.random():.6f}"
        headers = self.headers
        if self.rng.random() < BAD_SHARE:
            kind = self.rng.choice(sorted(BAD_KINDS))
        elif self.rng.random() < REPLY_SHARE:
            parent = self.acknowledged.pick(self.rng, thread)
            kind = "reply" if parent else "post"

        if kind == "empty_body":
            body = " \n\t "
        elif kind == "foreign_parent":
            parent = self.acknowledged.pick(self.rng, thread, other=True)
            kind = "foreign_parent" if parent else "unknown_parent"
        if kind == "unknown_parent":
            parent = "no-such-comment-" + tag.replace(".", "-")  # well-formed, unknown
        elif kind == "too_many_chars":
            body = f"{tag} " + "x" * 10_000
        elif kind == "too_many_bytes":
            body = f"{tag} " + "y" * 70_000
        elif kind == "forged_token":
            forged = mint_token("not-" + JWT_SECRET, sub=self.user, name="Forger")
            headers = {**headers, "Authorization": f"Bearer {forged}"}

        base = self.apis[(self.number + n) % len(self.apis)]
        response = http.post(
            f"{base}/v1/threads/{thread}/comments",
            json={"body": body, "parent_id": parent},
            headers=headers,
        )
        answer = response.json()
        code = answer["error"]["code"] if response.status_code >= 400 else ""
        if response.status_code == 201:
            self.acknowledged.add(thread, answer["id"])
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
        return Outcome(
            tag, kind, thread, parent, self.user, self.address, response.status_code, code, answer
        )


def every_event(store: EventStore) -> list[StoredEvent]:
    events: list[StoredEvent] = []
    while page := store.read_all(events[-1].position if events else 0, limit=1000):
        events += page
    return events


def tag_of(body: str) -> str:
    match = TAG.match(body)
    assert match, f"a body without a tag reached the log: {body[:60]!r}"
    return match.group(1)


class Folder:
    """Folds the thread projection in small batches while the writers write, as a worker would.

    (In-process: a `chorus worker` would also fold notifications, whose fan-out over 50
    participants costs more time than this test has.)
    """

    def __init__(self, engine: Engine, store: EventStore) -> None:
        self.engine = engine
        self.store = store
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.fold_all()
        self.fold_all()

    def fold_all(self) -> None:
        for thread in THREADS:
            fold_thread(self.engine, self.store, thread, batch_size=40)


@pytest.fixture
def apis(chorus_env: dict[str, str]) -> Iterator[list[str]]:
    """Two API processes with tight posting limits, on the (migrated) test database."""
    env = {**chorus_env, **LIMITS}
    servers = [running_api(env, free_port()) for _ in range(2)]
    with ExitStack() as stack:
        with ThreadPoolExecutor(len(servers)) as pool:  # they start side by side
            starting = [pool.submit(server.__enter__) for server in servers]
        for server, started in zip(servers, starting, strict=True):
            if started.exception() is None:
                stack.push(server)
        yield [started.result() for started in starting]


def test_many_concurrent_writers_leave_exactly_the_accepted_comments_in_the_log(
    apis: list[str], engine: Engine, store: EventStore
) -> None:
    acknowledged = Acknowledged()
    folder = Folder(engine, store)
    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        folding = pool.submit(folder.run)
        began = time.monotonic()
        runs = [pool.submit(Writer(n, apis, acknowledged).run, start) for n in range(CLIENTS)]
        try:
            outcomes = [outcome for run in runs for outcome in run.result()]
        finally:
            load_seconds = time.monotonic() - began
            folder.stop.set()
        folding.result()

    # Every answer is one the contract allows for its request.
    assert len(outcomes) == CLIENTS * POSTS_PER_CLIENT
    for o in outcomes:
        allowed = BAD_KINDS.get(o.kind, GOOD_ANSWERS)
        assert (o.status, o.code) in allowed, o
    accepted = [o for o in outcomes if o.status == 201]
    refused = [o for o in outcomes if o.status != 201]
    statuses = Counter(o.status for o in outcomes)
    kinds = Counter(o.kind for o in outcomes)
    # The run was what it claims: writes and replies landed, the limits refused most posts,
    # every kind of bad request was sent.
    assert any(o.kind == "reply" for o in accepted), statuses
    assert statuses[429] > len(outcomes) // 2, statuses
    assert set(BAD_KINDS) <= set(kinds), kinds

    # The limits held across both API processes.
    per_user = Counter(o.user for o in accepted)
    per_address = Counter(o.address for o in accepted)
    windows = math.floor(load_seconds / 60) + 1  # minute windows covering the whole run
    assert max(per_user.values()) <= min(POSTS_PER_HOUR, POSTS_PER_MINUTE * windows)
    assert max(per_address.values()) <= POSTS_PER_MINUTE_PER_IP * windows
    # ... and counted each address behind the trusted proxy on its own.
    assert len(accepted) > POSTS_PER_MINUTE_PER_IP * windows, per_address

    # Each accepted comment is in the log exactly once, as it was acknowledged; nothing else
    # was appended but the ThreadRegistered that opened each thread.
    events = every_event(store)
    posted = [e for e in events if e.type == "CommentPosted"]
    assert len(posted) == len(accepted)
    opened = {o.thread for o in accepted}
    assert sorted((e.type, e.stream_id) for e in events if e.type != "CommentPosted") == sorted(
        ("ThreadRegistered", thread) for thread in opened
    )
    logged = {e.data["comment_id"]: e for e in posted}
    assert len(logged) == len(posted), "a comment id appears twice in the log"
    assert set(logged) == {o.answer["id"] for o in accepted}
    for o in accepted:
        event = logged[o.answer["id"]]
        assert tag_of(event.data["body"]) == o.tag
        assert (event.stream_id, event.data["parent_id"], event.data["author"]["id"]) == (
            o.thread,
            o.parent,
            o.user,
        )
        assert (event.version, event.position) == (o.answer["version"], o.answer["position"])
    logged_tags = Counter(tag_of(e.data["body"]) for e in posted)
    assert logged_tags == Counter(o.tag for o in accepted)
    assert not {o.tag for o in refused} & set(logged_tags), "a refused request was appended"
    for thread in opened:
        versions = [e.version for e in events if e.stream_id == thread]
        assert versions == list(range(1, store.stream_version(thread) + 1)), thread

    # Folded while the writers wrote, the projection is at the head of every thread, equals
    # one clean fold of the log, and counts exactly the accepted replies.
    with engine.connect() as conn:
        heads = {row.stream_id: row.version for row in conn.execute(sa.select(STREAMS))}
        checkpoints = {
            row.thread_id: row.version for row in conn.execute(sa.select(LIVE.checkpoints))
        }
        reply_counts = {
            row.comment_id: row.reply_count
            for row in conn.execute(
                sa.select(LIVE.comments.c.comment_id, LIVE.comments.c.reply_count)
            )
        }
    assert checkpoints == heads
    assert snapshot(engine) == clean_fold(engine, store)
    replies = Counter(o.parent for o in accepted if o.parent is not None)
    assert reply_counts == {o.answer["id"]: replies[o.answer["id"]] for o in accepted}
    with httpx.Client(timeout=30) as http:
        counts = http.post(f"{apis[0]}/v1/counts", json={"thread_ids": THREADS}).json()["counts"]
    assert counts == {t: sum(o.thread == t for o in accepted) for t in THREADS}
