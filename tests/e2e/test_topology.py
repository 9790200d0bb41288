"""The compose topology with real processes, under concurrent load.

compose.yaml runs API replicas behind one proxy and several workers, sharing PostgreSQL,
Redis and an SMTP relay. Here the same roles are real `chorus` processes: two APIs, three
workers (RQ scheduler included), one PostgreSQL database, one Redis and an in-process SMTP
server. Client threads write through both APIs at once; once the workers have caught up,
everything a reader or a mailbox sees must agree with what the clients were told.
"""

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy.engine import Engine

from shared.nudges import FOLD_QUEUE
from shared.store import EventStore
from shared.tokens import mint_token
from tests.e2e.conftest import JWT_SECRET, Workers, free_port, running_api
from tests.projections import clean_fold, snapshot
from tests.smtp_sink import Inbox
from tests.waiting import wait_for

THREADS = [f"topology-{n}" for n in range(4)]
WATCHED = THREADS[0]
CLIENTS = 8
REQUESTS_PER_CLIENT = 40
# Who writes: most people have an address (their notifications are emailed), two do not
# (theirs stay in the app). u0 also watches WATCHED.
USERS = [f"u{n}" for n in range(10)]
WITH_EMAIL = set(USERS[:8])
WATCHER = "u0"
REFUSALS = ("empty_body", "foreign_parent", "no_token", "not_the_author", "not_an_admin")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


def headers(user: str, *, roles: list[str] | None = None) -> dict[str, str]:
    email = f"{user}@example.com" if user in WITH_EMAIL else None
    token = mint_token(JWT_SECRET, sub=user, name=f"User {user}", email=email, roles=roles)
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Posted:
    thread: str
    parent: str | None
    author: str
    version: int


@dataclass
class Ledger:
    """What the clients were told, shared by every client thread (under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    comments: dict[str, Posted] = field(default_factory=dict)
    by_thread: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    likes: set[tuple[str, str]] = field(default_factory=set)  # (user, comment) claimed
    accepted_likes: Counter[str] = field(default_factory=Counter)
    deleting: set[str] = field(default_factory=set)  # claimed for deletion
    deleted: set[str] = field(default_factory=set)
    # Every accepted write: (thread, version it returned). Each appended exactly one event.
    versions: list[tuple[str, int]] = field(default_factory=list)
    # Refusals whose reason depends on another client's write: checked once all are done.
    raced: list[tuple[str, str]] = field(default_factory=list)  # (reason, comment id)
    refused: Counter[str] = field(default_factory=Counter)
    served_by: Counter[str] = field(default_factory=Counter)

    def accepted(self, base: str, thread: str, version: int) -> None:
        self.versions.append((thread, version))
        self.served_by[base] += 1


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"{response.text}"
    )
    return response


class Client:
    """One client thread: a seeded mix of posts, replies, likes, deletes and bad requests."""

    def __init__(self, number: int, apis: list[str], ledger: Ledger) -> None:
        self.number = number
        self.apis = apis
        self.ledger = ledger
        self.rng = random.Random(number)

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            for n in range(REQUESTS_PER_CLIENT):
                self.step(http, n)

    def step(self, http: httpx.Client, n: int) -> None:
        """One request, whatever happens: the test counts them."""
        base = self.apis[(self.number + n) % len(self.apis)]
        thread = self.rng.choice(THREADS)
        user = self.rng.choice(USERS)
        roll = self.rng.random()
        if n % 8 == 7:  # five refusals per client, one of each kind
            self.refusal(http, base, thread, user, REFUSALS[(self.number + n // 8) % len(REFUSALS)])
            return
        if roll < 0.22 and self.like(http, base, thread, user):
            return
        if roll < 0.27 and self.delete(http, base, thread):
            return
        self.post(http, base, thread, user)

    def post(self, http: httpx.Client, base: str, thread: str, user: str) -> None:
        with self.ledger.lock:
            earlier = list(self.ledger.by_thread[thread])
        parent = self.rng.choice(earlier) if earlier and self.rng.random() < 0.3 else None
        response = expect(
            http.post(
                f"{base}/v1/threads/{thread}/comments",
                json={"body": f"*{user}* says {self.rng.random():.6f}", "parent_id": parent},
                headers=headers(user),
            ),
            201,
            409,
        )
        body = response.json()
        with self.ledger.lock:
            if response.status_code == 409:  # the parent was deleted meanwhile
                assert body["error"]["code"] == "parent_deleted"
                self.ledger.raced.append(("parent_deleted", str(parent)))
                self.ledger.refused["parent_deleted"] += 1
                return
            assert body["parent_id"] == parent
            self.ledger.comments[body["id"]] = Posted(thread, parent, user, body["version"])
            self.ledger.by_thread[thread].append(body["id"])
            self.ledger.accepted(base, thread, body["version"])

    def like(self, http: httpx.Client, base: str, thread: str, user: str) -> bool:
        with self.ledger.lock:
            candidates = [
                c for c in self.ledger.by_thread[thread] if (user, c) not in self.ledger.likes
            ]
            if not candidates:
                return False
            comment = self.rng.choice(candidates)
            self.ledger.likes.add((user, comment))  # each (user, comment) liked once: one event
        response = expect(
            http.put(f"{base}/v1/comments/{comment}/like", headers=headers(user)), 200, 409
        )
        with self.ledger.lock:
            if response.status_code == 409:  # deleted meanwhile
                assert response.json()["error"]["code"] == "comment_deleted"
                self.ledger.raced.append(("comment_deleted", comment))
                self.ledger.refused["comment_deleted"] += 1
                return True
            self.ledger.accepted_likes[comment] += 1
            self.ledger.accepted(base, thread, response.json()["version"])
        return True

    def delete(self, http: httpx.Client, base: str, thread: str) -> bool:
        with self.ledger.lock:
            candidates = [c for c in self.ledger.by_thread[thread] if c not in self.ledger.deleting]
            if not candidates:
                return False
            comment = self.rng.choice(candidates)
            self.ledger.deleting.add(comment)
            author = self.ledger.comments[comment].author
        response = expect(
            http.delete(f"{base}/v1/comments/{comment}", headers=headers(author)), 200
        )
        with self.ledger.lock:
            self.ledger.deleted.add(comment)
            self.ledger.accepted(base, thread, response.json()["version"])
        return True

    def refusal(self, http: httpx.Client, base: str, thread: str, user: str, kind: str) -> None:
        """A request the API must refuse; none of them may append anything."""
        with self.ledger.lock:
            others = [c for t in THREADS if t != thread for c in self.ledger.by_thread[t]]
            mine = self.ledger.by_thread[thread]
            not_mine = [c for c in mine if self.ledger.comments[c].author != user]
        url = f"{base}/v1/threads/{thread}/comments"
        if kind == "empty_body":
            response, status = http.post(url, json={"body": "  "}, headers=headers(user)), 422
        elif kind == "foreign_parent":  # a real comment, but of another thread
            parent = self.rng.choice(others) if others else "nope"
            body = {"body": "hi", "parent_id": parent}
            response, status = http.post(url, json=body, headers=headers(user)), 422
        elif kind == "no_token":
            response, status = http.post(url, json={"body": "anonymous"}), 401
        elif kind == "not_the_author" and not_mine:
            victim = self.rng.choice(not_mine)
            response = http.delete(f"{base}/v1/comments/{victim}", headers=headers(user))
            status = 403
        else:  # not_an_admin (or nobody else has commented here yet)
            kind = "not_an_admin"
            response = http.put(
                f"{base}/v1/threads/{thread}", json={"locked": True}, headers=headers(user)
            )
            status = 403
        expect(response, status)
        assert set(response.json()) == {"error"}
        with self.ledger.lock:
            self.ledger.refused[kind] += 1


def scalar_rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


def projections_caught_up(engine: Engine) -> bool:
    rows = scalar_rows(
        engine,
        "SELECT s.version, t.version, n.version FROM streams s"
        " LEFT JOIN thread_checkpoints t ON t.thread_id = s.stream_id"
        " LEFT JOIN notification_checkpoints n ON n.thread_id = s.stream_id"
        " WHERE s.stream_id LIKE 'topology-%'",
    )
    return len(rows) == len(THREADS) and all(head == t == n for head, t, n in rows)


def outbox_settled(engine: Engine) -> bool:
    busy = scalar_rows(
        engine, "SELECT COUNT(*) FROM email_outbox WHERE status IN ('pending', 'sending')"
    )
    return int(busy[0][0]) == 0


def walk_thread(http: httpx.Client, apis: list[str], thread: str) -> list[dict[str, Any]]:
    """Every comment a reader can reach: all pages, every nested reply, every "more" link.

    Small pages and few nested replies, so that both cursors are exercised; requests
    alternate between the APIs. Asserts each comment sits under its parent.
    """
    requests = itertools.count()

    def get(path: str, params: dict[str, Any]) -> Any:
        base = apis[next(requests) % len(apis)]
        return expect(http.get(f"{base}{path}", params=params), 200).json()

    seen: list[dict[str, Any]] = []

    def visit(node: dict[str, Any], parent: str | None) -> None:
        assert node["thread_id"] == thread
        assert node["parent_id"] == parent
        seen.append(node)
        for reply in node["replies"]:
            visit(reply, node["id"])
        cursor = node["replies_next_cursor"]
        while cursor is not None:
            page = get(
                f"/v1/comments/{node['id']}/replies", {"cursor": cursor, "limit": 4, "replies": 2}
            )
            for reply in page["replies"]:
                visit(reply, node["id"])
            cursor = page["next_cursor"]

    params: dict[str, Any] = {"limit": 7, "replies": 2}
    while True:
        page = get(f"/v1/threads/{thread}/comments", params)
        for comment in page["comments"]:
            visit(comment, None)
        if page["next_cursor"] is None:
            return seen
        params = {**params, "cursor": page["next_cursor"]}


def expected_notifications(ledger: Ledger, watched_since: int) -> set[tuple[str, str, str]]:
    """The notification rule (docs/api.md) applied to what clients were told."""
    expected = set()
    for thread in THREADS:
        posts = sorted(
            ((cid, p) for cid, p in ledger.comments.items() if p.thread == thread),
            key=lambda item: item[1].version,
        )
        root_of: dict[str, str] = {}
        participants: dict[str, set[str]] = defaultdict(set)
        for cid, post in posts:
            root = root_of[post.parent] if post.parent else cid
            root_of[cid] = root
            kinds: dict[str, str] = {}
            if post.parent:
                kinds[ledger.comments[post.parent].author] = "reply"
                for user in participants[root]:
                    kinds.setdefault(user, "conversation")
            if thread == WATCHED and post.version > watched_since:
                kinds.setdefault(WATCHER, "thread")
            kinds.pop(post.author, None)
            expected |= {(user, cid, kind) for user, kind in kinds.items()}
            participants[root].add(post.author)
    return expected


@pytest.fixture
def topology(chorus_env: dict[str, str], workers: Workers, inbox: Inbox) -> Iterator[list[str]]:
    """Two API processes and three workers on one database, one Redis, one SMTP server."""
    ports = [free_port(), free_port()]
    env = {
        **chorus_env,
        "CHORUS_SMTP_URL": inbox.smtp_url,
        # compose sets the proxy's address; here any one of the APIs will do.
        "CHORUS_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
        "CHORUS_RATE_LIMIT_ENABLED": "false",
    }
    workers.env.update(env)
    for _ in range(3):
        workers.start()
    with ExitStack() as stack:
        yield [stack.enter_context(running_api(env, port)) for port in ports]


def test_two_apis_and_three_workers_under_concurrent_load_agree_with_the_log(
    topology: list[str], engine: Engine, store: EventStore, inbox: Inbox, redis: Redis
) -> None:
    apis = topology
    ledger = Ledger()
    admin = headers("editor", roles=["admin"])
    with httpx.Client(timeout=30) as http:
        for n, thread in enumerate(THREADS):
            base = apis[n % 2]
            registered = http.put(
                f"{base}/v1/threads/{thread}",
                json={"title": f"Post {n}", "url": f"https://news.example/p/{n}"},
                headers=admin,
            )
            ledger.accepted(base, thread, expect(registered, 200).json()["version"])
        watching = http.put(
            f"{apis[1]}/v1/threads/{WATCHED}/subscription",
            json={"level": "watching"},
            headers=headers(WATCHER),
        )
        watched_since = expect(watching, 200).json()["version"]
        ledger.accepted(apis[1], WATCHED, watched_since)

        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            runs = [pool.submit(Client(n, apis, ledger).run) for n in range(CLIENTS)]
            for run in runs:
                run.result()  # re-raises a client's failed assertion here
        load_seconds = time.monotonic() - started

        wait_for(lambda: projections_caught_up(engine), "both projections to catch up")
        wait_for(lambda: outbox_settled(engine), "the mailers to empty the outbox")

        pages = {thread: walk_thread(http, apis, thread) for thread in THREADS}
        unknown = "topology-never-commented"
        counts = expect(
            http.post(f"{apis[0]}/v1/counts", json={"thread_ids": [*THREADS, unknown]}), 200
        ).json()["counts"]
        summaries = {
            thread: expect(http.get(f"{apis[1]}/v1/threads/{thread}"), 200).json()
            for thread in THREADS
        }

    # The load was real: both APIs took writes, every kind of refusal happened.
    total_requests = CLIENTS * REQUESTS_PER_CLIENT
    assert sum(ledger.refused.values()) + len(ledger.versions) - len(THREADS) - 1 == (
        total_requests
    )
    assert all(ledger.served_by[base] > 50 for base in apis), ledger.served_by
    assert set(REFUSALS) <= set(ledger.refused), ledger.refused
    assert ledger.deleted
    assert ledger.accepted_likes
    assert load_seconds < 300  # a stall, not a slow machine (six suites share two cores)

    # A refusal that raced another client's write was right: that write had happened.
    for reason, comment in ledger.raced:
        assert comment in ledger.deleted, (reason, comment)

    # Every accepted write appended exactly one event, every refusal none: per thread,
    # the versions the clients were told are exactly 1..head, each once.
    by_thread: dict[str, list[int]] = defaultdict(list)
    for thread, version in ledger.versions:
        by_thread[thread].append(version)
    for thread in THREADS:
        head = store.stream_version(thread)
        assert sorted(by_thread[thread]) == list(range(1, head + 1)), thread
    (events,) = scalar_rows(engine, "SELECT COUNT(*) FROM events")[0]
    assert events == len(ledger.versions)

    # Readers see every live comment once, deleted ones only as placeholders over replies.
    children: dict[str, list[str]] = defaultdict(list)
    for cid, post in ledger.comments.items():
        if post.parent:
            children[post.parent].append(cid)

    def live_below(cid: str) -> int:
        return sum((child not in ledger.deleted) + live_below(child) for child in children[cid])

    for thread in THREADS:
        ids = [node["id"] for node in pages[thread]]
        assert len(ids) == len(set(ids)), "a comment appeared twice"
        mine = {cid for cid, post in ledger.comments.items() if post.thread == thread}
        shown = {cid for cid in mine if cid not in ledger.deleted or live_below(cid) > 0}
        assert set(ids) == shown, thread
        for node in pages[thread]:
            cid = node["id"]
            assert node["deleted"] == (cid in ledger.deleted)
            if node["deleted"]:
                assert node["author"] is None
                assert node["body_html"] is None
            else:
                assert node["author"]["id"] == ledger.comments[cid].author
                assert node["like_count"] == ledger.accepted_likes[cid]
            live_replies = [c for c in children[cid] if c not in ledger.deleted]
            assert node["reply_count"] == len(live_replies), cid
            assert node["descendant_count"] == live_below(cid), cid
        visible = len(mine - ledger.deleted)
        assert counts[thread] == visible == summaries[thread]["comment_count"]
        assert summaries[thread]["version"] == store.stream_version(thread)
    assert counts[unknown] == 0

    # The projection the racing workers built is the one a single clean fold builds.
    assert snapshot(engine) == clean_fold(engine, store)
    assert scalar_rows(engine, "SELECT COUNT(*) FROM dead_letters")[0][0] == 0
    failed = FailedJobRegistry(queue=Queue(FOLD_QUEUE, connection=redis))
    assert failed.get_job_ids() == [], "a worker job raised"

    # Notifications follow the rule; each has exactly one outbox row, and each outbox row
    # of someone with an address went out exactly once, with its own Message-ID.
    notified = {
        tuple(row)
        for row in scalar_rows(
            engine,
            "SELECT recipient_id, comment_id, kind FROM notifications"
            " WHERE thread_id LIKE 'topology-%'",
        )
    }
    assert notified == expected_notifications(ledger, watched_since)
    outbox = scalar_rows(
        engine, "SELECT recipient_id, comment_id, status, message_id FROM email_outbox"
    )
    assert sorted((r.recipient_id, r.comment_id) for r in outbox) == sorted(
        (recipient, comment) for recipient, comment, _kind in notified
    )
    sent = [r for r in outbox if r.status == "sent"]
    assert {r.recipient_id for r in sent} <= WITH_EMAIL
    assert all(r.status == "skipped" for r in outbox if r.recipient_id not in WITH_EMAIL)
    assert all(r.status == "sent" for r in outbox if r.recipient_id in WITH_EMAIL)
    delivered = sorted(zip(inbox.message_ids(), map(tuple, inbox.recipients), strict=True))
    assert len({message_id for message_id, _ in delivered}) == len(delivered), "a duplicate"
    assert delivered == sorted((r.message_id, (f"{r.recipient_id}@example.com",)) for r in sent)
    assert len(sent) > 20
