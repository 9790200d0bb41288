"""`chorus export` on both databases: what the pages show, in the chorus format, streamed.

The round trip through `chorus import` (and both commands) is test_chorus_round_trip.py.
"""

import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from services.cli import app
from services.worker.export import ExportResult, ThreadNotFound, export
from services.worker.folding import fold_thread
from services.worker.imports.chorus_format import ChorusExport
from services.worker.imports.model import SourceThread
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    DeleteComment,
    EditComment,
    EraseUser,
    LikeComment,
    LockThread,
    PostComment,
    RegisterThread,
    RejectComment,
    RequestContext,
    UnlikeComment,
)
from shared.projection_tables import LIVE
from shared.settings import get_settings
from shared.store import EventStore

NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def as_(user: str, *roles: str) -> RequestContext:
    return RequestContext(Actor(user, user.title(), roles=frozenset(roles)))


@pytest.fixture
def bus(engine: Engine, store: EventStore) -> Iterator[CommandBus]:
    bus = CommandBus(engine, store)
    yield bus
    bus.close()


@pytest.fixture
def site(bus: CommandBus, engine: Engine, store: EventStore) -> dict[str, str]:
    """Two threads folded: a story (title, url, replies, an edit, a delete, likes, locked
    at the end) and a pre-moderated one (a pending and a rejected comment)."""
    admin = as_("ada", "admin")
    bus.execute(RegisterThread("story", title="A story", url="https://news.example/a"), admin)
    ids = {"top": bus.execute(PostComment("story", "**Top**"), as_("ann")).id}
    ids["reply"] = bus.execute(PostComment("story", "a reply", ids["top"]), as_("bob")).id
    bus.execute(EditComment(ids["reply"], "a reply, edited"), as_("bob"))
    ids["gone"] = bus.execute(PostComment("story", "regrets", ids["top"]), as_("cy")).id
    for user in ("bob", "cy", "dan"):
        bus.execute(LikeComment(ids["top"]), as_(user))
    bus.execute(LikeComment(ids["gone"]), as_("ann"))
    bus.execute(UnlikeComment(ids["top"]), as_("cy"))
    bus.execute(DeleteComment(ids["gone"]), as_("cy"))
    bus.execute(LockThread("story"), as_("mia", "moderator"))
    bus.execute(RegisterThread("held", moderation="pre"), admin)
    ids["pending"] = bus.execute(PostComment("held", "wait for me"), as_("ann")).id
    ids["rejected"] = bus.execute(PostComment("held", "no thanks"), as_("bob")).id
    bus.execute(RejectComment(ids["rejected"]), as_("mia", "moderator"))
    for thread_id in ("story", "held"):
        fold_thread(engine, store, thread_id)
    return ids


def exported(engine: Engine, **options: Any) -> tuple[list[dict[str, Any]], ExportResult]:
    out = io.BytesIO()
    result = export(engine, out, now=NOW, **options)
    text = out.getvalue().decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()], result


def projected(engine: Engine, comment_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(LIVE.comments).where(LIVE.comments.c.comment_id == comment_id)
        ).one()


def iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_an_export_is_the_pages_with_their_markdown_likers_and_placeholders(
    engine: Engine, site: dict[str, str]
) -> None:
    lines, result = exported(engine)
    assert result == ExportResult(threads=2, comments=5, unfolded_threads=0)
    assert lines[0] == {
        "format": "chorus",
        "version": 1,
        "exported_at": "2026-11-30T05:00:00.000000Z",
    }
    assert lines[-1] == {"type": "end", "threads": 2, "comments": 5}
    kinds = [(line.get("type"), line.get("id")) for line in lines[1:-1]]
    assert kinds == [
        ("thread", "held"),
        ("comment", site["pending"]),
        ("comment", site["rejected"]),
        ("thread", "story"),
        ("comment", site["top"]),
        ("comment", site["reply"]),
        ("comment", site["gone"]),
    ]
    by_id = {(line["type"], line["id"]): line for line in lines[1:-1]}
    story = by_id[("thread", "story")]
    assert {k: story[k] for k in ("title", "url", "locked")} == {
        "title": "A story",
        "url": "https://news.example/a",
        "locked": True,
    }
    assert story["created_at"].endswith("Z")
    top, reply, gone = (by_id[("comment", site[k])] for k in ("top", "reply", "gone"))
    assert top == {
        "type": "comment",
        "id": site["top"],
        "thread_id": "story",
        "parent_id": None,
        "author": {"id": "ann", "name": "Ann"},
        "body": "**Top**",  # the markdown, not the page's HTML
        "created_at": iso(projected(engine, site["top"]).created_at),
        "edited_at": None,
        "status": "published",
        "deleted": False,
        "likes": 0,
        "liked_by": ["bob", "dan"],  # cy liked, then unliked
    }
    assert (reply["parent_id"], reply["body"]) == (site["top"], "a reply, edited")
    assert reply["edited_at"] == iso(projected(engine, site["reply"]).edited_at)
    # Deleted: a placeholder keeps its place, times, status and likes; no text, no name.
    assert {k: gone[k] for k in ("author", "body", "deleted", "liked_by", "parent_id")} == {
        "author": {"id": "cy", "name": ""},
        "body": None,
        "deleted": True,
        "liked_by": ["ann"],
        "parent_id": site["top"],
    }
    statuses = [by_id[("comment", site[k])]["status"] for k in ("pending", "rejected")]
    assert statuses == ["pending", "rejected"]
    assert by_id[("comment", site["pending"])]["body"] == "wait for me"


def test_what_the_writer_writes_the_reader_reads(
    engine: Engine, site: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "site.jsonl"
    with path.open("wb") as out:
        export(engine, out)
    held, story = list(ChorusExport(path).threads())
    assert isinstance(story, SourceThread)
    assert isinstance(held, SourceThread)
    assert (story.key, story.title, story.locked) == ("story", "A story", True)
    top, reply, gone = story.comments
    assert (top.comment_id, top.liked_by, top.likes, top.body) == (
        site["top"],
        ("bob", "dan"),
        0,
        "**Top**",
    )
    assert top.posted_at == projected(engine, site["top"]).created_at.replace(tzinfo=UTC)
    assert reply.parent_key == site["top"]
    assert reply.edited_at is not None
    assert (gone.deleted, gone.body, gone.liked_by) == (True, "", ("ann",))
    assert [c.status for c in held.comments] == ["pending", "rejected"]


def test_a_thread_behind_its_log_is_exported_as_its_pages_show_it(
    bus: CommandBus, engine: Engine, site: dict[str, str]
) -> None:
    """The like count and the likers describe one moment, the projection's: a like not
    folded yet is in neither, so no like is counted twice or lost as anonymous."""
    bus.execute(LikeComment(site["reply"]), as_("ann"))
    bus.execute(PostComment("held", "later"), as_("cy"))
    lines, result = exported(engine)
    assert result.unfolded_threads == 2
    reply = next(line for line in lines if line.get("id") == site["reply"])
    assert (reply["likes"], reply["liked_by"]) == (0, [])
    assert result.comments == 5


def test_one_thread_or_none(engine: Engine, site: dict[str, str]) -> None:
    lines, result = exported(engine, thread_id="story")
    ids = [line.get("id") for line in lines[1:-1]]
    assert ids == ["story", site["top"], site["reply"], site["gone"]]
    assert result == ExportResult(threads=1, comments=3, unfolded_threads=0)
    with pytest.raises(ThreadNotFound):
        export(engine, io.BytesIO(), thread_id="nowhere")


def test_an_empty_site_exports_a_header_and_an_end(engine: Engine) -> None:
    lines, result = exported(engine)
    assert lines[1:] == [{"type": "end", "threads": 0, "comments": 0}]
    assert result == ExportResult(0, 0, 0)


@pytest.fixture
def chorus(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    monkeypatch.setenv("CHORUS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, list(args))
    get_settings.cache_clear()


def test_chorus_export_writes_a_file_or_stdout(
    site: dict[str, str], chorus: Callable[..., Any], tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    path = folder / "out.jsonl"
    ran = chorus("export", "--output", str(path))
    assert ran.exit_code == 0, ran.output
    assert "exported 2 threads, 5 comments" in ran.output
    assert [t.key for t in ChorusExport(path).threads()] == ["held", "story"]
    assert list(folder.iterdir()) == [path]  # the .partial was renamed

    ran = chorus("export", "--thread", "held")
    assert ran.exit_code == 0, ran.output
    assert '{"type":"thread","id":"held"' in ran.stdout

    ran = chorus("export", "--thread", "nowhere", "--output", str(folder / "no.jsonl"))
    assert ran.exit_code == 2
    assert "thread 'nowhere' has no page to export" in ran.output
    assert list(folder.iterdir()) == [path]


def test_an_erased_persons_comments_are_exported_as_placeholders_without_name_or_text(
    bus: CommandBus, engine: Engine, store: EventStore, site: dict[str, str]
) -> None:
    """Decision 33's erasure, as pages show it: an export made afterwards holds neither
    their name nor their words, so importing it cannot bring them back."""
    bus.execute(EraseUser("bob"), as_("bob"))
    for thread_id in ("story", "held"):
        fold_thread(engine, store, thread_id)
    out = io.BytesIO()
    export(engine, out)
    text = out.getvalue().decode("utf-8")
    assert "Bob" not in text
    assert "a reply" not in text
    assert "no thanks" not in text  # bob's rejected comment
    lines = [json.loads(line) for line in text.splitlines()]
    (reply,) = (line for line in lines if line.get("id") == site["reply"])
    assert (reply["deleted"], reply["body"], reply["author"]["name"]) == (True, None, "")
