"""Export, then import into an empty database: the same pages, counts and likes.

Hypothesis drives random command sequences through the real command bus on SQLite and
PostgreSQL (threads with titles, URLs, pre-moderation and locks; comments nested by
replies, edited, deleted by their authors or a moderator, liked and unliked by several
people, rejected and approved; refused commands are simply refused), folds them, runs
`export`, imports the file with the import engine into a fresh, empty database of the
same kind, folds it, and compares, for the anonymous reader:

- every page of `GET /v1/threads/{id}/comments` (oldest first and most liked first,
  following every `next_cursor` and every `replies_next_cursor`), cursors compared by
  presence only (they carry each side's stream versions);
- `GET /v1/threads/{id}` (title, URL, lock, comment and participant counts);
- who likes what (the write index's `comment_likes`) and each comment's like count;
- and the second database's own export, which must be the first one, line for line:
  what no page shows (held and rejected comments' text, edit times) comes back too.

The people are readers and one moderator; nobody posts as staff, whose badge the format
does not carry (decision 36).
"""

import importlib.util
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from services.api.app import create_app
from services.cli import app
from services.worker.export import export
from services.worker.folding import fold_thread
from services.worker.imports.chorus_format import ChorusExport
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    ApproveComment,
    Command,
    DeleteComment,
    EditComment,
    LikeComment,
    LockThread,
    PostComment,
    RegisterThread,
    RejectComment,
    RequestContext,
    UnlikeComment,
)
from shared.db import create_db_engine
from shared.errors import ChorusError
from shared.settings import Settings, get_settings
from shared.store import EventStore
from shared.write_index import CommentLike, CommentState
from tests.conftest import _admin_engine, _postgres_url
from tests.integration.conftest import JWT_SECRET, LOOPBACK_PEER

LIKES = CommentLike.__table__  # type: ignore[attr-defined]
COMMENT_STATE = CommentState.__table__  # type: ignore[attr-defined]
READERS = ["ann", "bob", "cy", "dan"]
MODERATOR = RequestContext(Actor("mia", "Mia", roles=frozenset({"moderator"})))
ADMIN = RequestContext(Actor("ada", "Ada", roles=frozenset({"admin"})))
ROUND_TRIPS = settings(max_examples=12, deadline=None, database=None, print_blob=True)


def reader(name: str) -> RequestContext:
    return RequestContext(Actor(name, name.title()))


# -- what hypothesis generates ---------------------------------------------------------

# Kinds repeated by weight: mostly posting, replying and liking, so threads grow.
KINDS = (
    ["post"] * 3
    + ["reply"] * 5
    + ["like"] * 3
    + ["unlike", "edit", "delete", "reject", "approve", "premod", "lock"]
)
# (kind, who, which comment or thread, a flag: the latest comments / a moderator / on)
steps = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(READERS),
    st.integers(min_value=0, max_value=10_000),
    st.booleans(),
)
titles = st.one_of(st.none(), st.sampled_from(["A story", "Ünïcode: a title", "  spaced  "]))
urls = st.one_of(st.none(), st.just("https://news.example/story?id=1"))


@dataclass
class Site:
    """What one example wrote: its threads and comments (by their ids), in order."""

    threads: list[str]
    comments: list[tuple[str, str]]  # (comment id, author)
    bodies: int = 0


def write_site(
    bus: CommandBus, prefix: str, title: str | None, url: str | None, plan: list[Any]
) -> Site:
    site = Site(threads=[f"{prefix}-a", f"{prefix}-b"], comments=[])
    bus.execute(RegisterThread(site.threads[0], title=title, url=url), ADMIN)
    for kind, who, pick, flag in plan:
        # Refused (a deleted parent, a locked thread, not the author...): fine.
        with suppress(ChorusError):
            run_step(bus, site, kind, who, pick, flag)
    return site


def run_step(bus: CommandBus, site: Site, kind: str, who: Any, pick: int, flag: Any) -> None:
    def body() -> str:
        site.bodies += 1
        return f"comment *{site.bodies}* with [a link](https://example.org/{site.bodies})"

    if kind == "post":
        new = bus.execute(PostComment(site.threads[pick % 2], body()), reader(who))
        site.comments.append((new.id, who))
        return
    if kind in ("premod", "lock"):
        thread_id = site.threads[pick % 2]
        command: Command
        if kind == "premod":
            command = RegisterThread(thread_id, moderation="pre" if flag else "post")
            bus.execute(command, ADMIN)
        else:
            bus.execute(LockThread(thread_id, locked=flag), MODERATOR)
        return
    if not site.comments:
        return
    # Replies favour the latest comments, so chains grow deep.
    index = len(site.comments) - 1 - pick % 3 if kind == "reply" and flag else pick
    comment_id, author = site.comments[max(0, index) % len(site.comments)]
    if kind == "reply":
        thread_id = thread_of(bus.engine, comment_id)
        new = bus.execute(PostComment(thread_id, body(), comment_id), reader(who))
        site.comments.append((new.id, who))
    elif kind == "edit":
        bus.execute(EditComment(comment_id, body() + " (edited)"), reader(author))
    elif kind == "delete":
        bus.execute(DeleteComment(comment_id), MODERATOR if flag else reader(author))
    elif kind == "like":
        bus.execute(LikeComment(comment_id), reader(who))
    elif kind == "unlike":
        bus.execute(UnlikeComment(comment_id), reader(who))
    elif kind == "reject":
        bus.execute(RejectComment(comment_id), MODERATOR)
    elif kind == "approve":
        bus.execute(ApproveComment(comment_id), MODERATOR)


def thread_of(engine: Engine, comment_id: str) -> str:
    with engine.connect() as conn:
        query = sa.select(COMMENT_STATE.c.thread_id).where(COMMENT_STATE.c.comment_id == comment_id)
        return str(conn.execute(query).scalar_one())


# -- databases -------------------------------------------------------------------------


class Databases:
    """Fresh, migrated, empty databases of one kind, made from the session's template."""

    def __init__(self, request: pytest.FixtureRequest, kind: str, folder: Path) -> None:
        self.kind, self.folder = kind, folder
        self.template: Any = request.getfixturevalue(
            "sqlite_template" if kind == "sqlite" else "postgres_template"
        )

    @contextmanager
    def fresh(self) -> Iterator[Engine]:
        if self.kind == "sqlite":
            path = self.folder / f"{uuid.uuid4().hex[:12]}.db"
            shutil.copy(self.template, path)
            engine = create_db_engine(f"sqlite:///{path}")
            try:
                yield engine
            finally:
                engine.dispose()
            return
        name = f"chorus_test_{uuid.uuid4().hex[:12]}"
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        engine = create_db_engine(_postgres_url(name))
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Databases:
    return Databases(request, request.param, tmp_path)


# -- what is compared ------------------------------------------------------------------


def pages(client: TestClient, thread_id: str, sort: str) -> list[Any]:
    """Every page an anonymous reader can reach from the thread, cursors as presence."""
    seen: list[Any] = []
    query: dict[str, Any] = {"sort": sort, "limit": 3, "replies": 2}
    while True:
        answer = client.get(f"/v1/threads/{thread_id}/comments", params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen.append(normalized(client, page, seen))
        if page["next_cursor"] is None:
            return seen
        query["cursor"] = page["next_cursor"]


def normalized(client: TestClient, page: dict[str, Any], more: list[Any]) -> dict[str, Any]:
    """The page without what differs by construction (versions, cursors' bytes); every
    cut-off reply list is followed and appended to `more`."""
    page = {k: v for k, v in page.items() if k != "version"}
    if "next_cursor" in page:
        page["next_cursor"] = page["next_cursor"] is not None
    for key in ("comments", "replies"):
        for comment in page.get(key, []):
            normalize_comment(client, comment, more)
    return page


def normalize_comment(client: TestClient, comment: dict[str, Any], more: list[Any]) -> None:
    cursor = comment["replies_next_cursor"]
    comment["replies_next_cursor"] = cursor is not None
    for reply in comment["replies"]:
        normalize_comment(client, reply, more)
    while cursor is not None:
        answer = client.get(
            f"/v1/comments/{comment['id']}/replies",
            params={"cursor": cursor, "limit": 3, "replies": 2},
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        cursor = page["next_cursor"]
        more.append(normalized(client, page, more))


def thread_summary(client: TestClient, thread_id: str, *, rejected: bool) -> dict[str, Any]:
    """The thread's answer without its version. `last_comment_at` is when a comment was
    last published; a rejected comment may have been published before it was rejected,
    which no export says, so where the thread has one it is left out (decision 36)."""
    answer = client.get(f"/v1/threads/{thread_id}")
    if answer.status_code == 404:
        return {}
    assert answer.status_code == 200, answer.text
    left_out = {"version", "last_comment_at"} if rejected else {"version"}
    return {k: v for k, v in answer.json().items() if k not in left_out}


def likes(engine: Engine, comment_ids: list[str]) -> tuple[set[tuple[str, str]], dict[str, int]]:
    with engine.connect() as conn:
        likers = conn.execute(
            sa.select(LIKES.c.comment_id, LIKES.c.user_id).where(
                LIKES.c.comment_id.in_(comment_ids)
            )
        )
        counts = conn.execute(
            sa.select(COMMENT_STATE.c.comment_id, COMMENT_STATE.c.like_count).where(
                COMMENT_STATE.c.comment_id.in_(comment_ids)
            )
        )
        return {(c, u) for c, u in likers}, {c: int(n) for c, n in counts}


def exported_lines(engine: Engine, path: Path) -> list[dict[str, Any]]:
    """The export's lines after the header (which says when it was written)."""
    with path.open("wb") as out:
        export(engine, out)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def describe(lines: list[dict[str, Any]]) -> None:
    """What the example holds, for `--hypothesis-show-statistics`."""
    comments = [line for line in lines if line["type"] == "comment"]
    depth: dict[str, int] = {}
    for c in comments:
        depth[c["id"]] = depth[c["parent_id"]] + 1 if c["parent_id"] else 0
    event(f"comments: {min(len(comments), 10) // 5 * 5}+")
    event(f"deepest reply: {min(max(depth.values(), default=0), 4)}+")
    for what, found in (
        ("edited", any(c["edited_at"] for c in comments)),
        ("deleted", any(c["deleted"] for c in comments)),
        ("pending", any(c["status"] == "pending" for c in comments)),
        ("rejected", any(c["status"] == "rejected" for c in comments)),
        ("liked by two or more", any(len(c["liked_by"]) > 1 for c in comments)),
        ("locked", any(line.get("locked") for line in lines)),
    ):
        if found:
            event(what)


@contextmanager
def api(engine: Engine, redis_url: str) -> Iterator[TestClient]:
    reads = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        rate_limit_enabled=False,
        read_version_trust_seconds=0,
    )
    with TestClient(create_app(reads), client=LOOPBACK_PEER) as client:
        yield client


# -- the property ----------------------------------------------------------------------


def require_engine() -> None:
    if importlib.util.find_spec("services.worker.imports.engine") is None:
        pytest.skip(
            "the import engine (services/worker/imports/engine.py, branch issue13-engine)"
            " is not on this branch yet"
        )


def import_file(engine: Engine, path: Path) -> Any:
    """`chorus import path --format chorus --fold here`, through the engine; its report."""
    from services.worker.imports.engine import Importer
    from services.worker.imports.folds import FoldHere

    folds = FoldHere(engine, EventStore(engine))
    return Importer(engine, ChorusExport(path), after_batch=folds).run()


def test_a_file_from_another_installation_exports_again_as_it_was(
    databases: Databases, tmp_path: Path
) -> None:
    """What a Chorus-born site never holds: likes nobody is named for (an import's, from
    another tool), alongside named ones, on a deleted comment too; a rejected comment
    with its text and a published reply below it; a pending reply."""
    lines: list[dict[str, Any]] = [
        {"format": "chorus", "version": 1, "exported_at": "2026-11-30T05:00:00.000000Z"},
        {
            "type": "thread",
            "id": "moved",
            "title": "Moved",
            "url": "https://old.example/moved",
            "locked": True,
            "created_at": "2019-01-01T00:00:00.000000Z",
        },
    ]

    def comment(n: int, **fields: Any) -> dict[str, Any]:
        return {
            "type": "comment",
            "id": f"01h0000000000000000000000{n}",
            "thread_id": "moved",
            "parent_id": None,
            "author": {"id": f"import:isso:{n}", "name": f"Reader {n}"},
            "body": f"comment {n}",
            "created_at": f"2019-01-0{n}T10:00:00.000000Z",
            "edited_at": None,
            "status": "published",
            "deleted": False,
            "likes": 0,
            "liked_by": [],
        } | fields

    first = comment(1, likes=4, liked_by=["ann", "bob"])
    lines += [
        first,
        comment(2, parent_id=first["id"], status="pending", likes=1),
        comment(
            3,
            parent_id=first["id"],
            deleted=True,
            body=None,
            author={"id": "import:isso:3", "name": ""},
            likes=2,
            liked_by=["cy"],
        ),
        comment(4, status="rejected"),
        comment(5, parent_id=comment(4)["id"], edited_at=None),
        {"type": "end", "threads": 1, "comments": 5},
    ]
    require_engine()
    path = tmp_path / "moved.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with databases.fresh() as engine:
        report = import_file(engine, path)
        assert (report.threads_imported, report.comments_imported) == (1, 5)
        again = exported_lines(engine, tmp_path / "again.jsonl")
    assert again == lines[1:]


def test_export_then_import_into_an_empty_database_gives_the_same_pages_counts_and_likes(
    databases: Databases, redis_url: str, tmp_path: Path
) -> None:
    require_engine()

    @ROUND_TRIPS
    @given(
        title=titles,
        url=urls,
        plan=st.lists(steps, min_size=15, max_size=60),
    )
    def round_trip(title: str | None, url: str | None, plan: list[Any]) -> None:
        with databases.fresh() as source, databases.fresh() as target:
            store = EventStore(source)
            bus = CommandBus(source, store)
            try:
                site = write_site(bus, uuid.uuid4().hex[:8], title, url, plan)
            finally:
                bus.close()
            for thread_id in site.threads:
                fold_thread(source, store, thread_id)
            path = tmp_path / "export.jsonl"
            before = exported_lines(source, path)

            describe(before)

            report = import_file(target, path)
            assert not report.threads_skipped, report

            ids = [comment_id for comment_id, _ in site.comments]
            assert likes(target, ids) == likes(source, ids)
            rejected = {
                line["thread_id"]
                for line in before
                if line["type"] == "comment" and line["status"] == "rejected"
            }
            with api(source, redis_url) as was, api(target, redis_url) as now:
                for thread_id in site.threads:
                    summary = partial(thread_summary, rejected=thread_id in rejected)
                    assert summary(now, thread_id) == summary(was, thread_id)
                    for sort in ("oldest", "top"):
                        assert pages(now, thread_id, sort) == pages(was, thread_id, sort)
            assert exported_lines(target, tmp_path / "again.jsonl") == before

    round_trip()


def test_chorus_export_then_chorus_import_on_the_command_line(
    databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def chorus(engine: Engine, *args: str) -> Any:
        monkeypatch.setenv("CHORUS_DATABASE_URL", engine.url.render_as_string(False))
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args))
        finally:
            get_settings.cache_clear()

    require_engine()
    path = tmp_path / "site.jsonl"
    with databases.fresh() as source, databases.fresh() as target:
        store = EventStore(source)
        bus = CommandBus(source, store)
        try:
            top = bus.execute(PostComment("cli", "hello"), reader("ann")).id
            bus.execute(PostComment("cli", "hi back", top), reader("bob"))
            bus.execute(LikeComment(top), reader("cy"))
        finally:
            bus.close()
        fold_thread(source, store, "cli")
        exported = chorus(source, "export", "--output", str(path))
        assert exported.exit_code == 0, exported.output
        imported = chorus(target, "import", str(path), "--format", "chorus", "--fold", "here")
        assert imported.exit_code == 0, imported.output
        assert exported_lines(target, tmp_path / "again.jsonl") == exported_lines(
            source, tmp_path / "first.jsonl"
        )
