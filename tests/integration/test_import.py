"""`chorus import`: a source's threads into the log, the write side and (folded) the pages.

Sources are built in Python (tests/import_sources.py); the parsers have tests of their own.
"""

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from services.cli import app
from services.worker.folding import fold_all, thread_projection
from services.worker.imports import formats
from services.worker.imports.engine import Importer
from services.worker.imports.folds import FoldHere
from services.worker.imports.ids import url_thread_id
from services.worker.imports.model import SourceThread
from services.worker.imports.rendering_pool import Rendering, RenderPool
from services.worker.imports.report import ImportReport
from services.worker.notification_projector import notification_projection
from services.worker.rebuild import rebuild_notifications
from services.worker.verify import verify
from shared.handlers import MAX_DEPTH
from shared.notification_tables import email_outbox, notifications
from shared.projection_tables import LIVE
from shared.rendering import render_markdown
from shared.settings import Settings, get_settings
from shared.store import EventStore
from shared.timeutil import as_utc
from tests.import_sources import START, ListSource, chain, comment, thread
from tests.integration.conftest import Auth


def run(engine: Engine, source: ListSource, **options: object) -> ImportReport:
    fold = FoldHere(engine, EventStore(engine))
    return Importer(engine, source, after_batch=fold, **options).run()  # type: ignore[arg-type]


def blog() -> list[SourceThread]:
    return [
        thread(
            "a",
            [
                comment("3", "2", minute=9, who="cat"),  # out of order in the file
                comment("1", minute=1, likes=4, liked_by=("import:disqus:bob",)),
                comment("2", "1", minute=5, who="bob"),
                comment("gone", "1", minute=6, deleted=True, body="never imported"),
                comment("orphan", "not-exported", minute=7),
                comment("held", minute=8, status="pending"),
                comment("nope", minute=8, status="rejected"),
            ],
        ),
        thread("deep", chain("d", MAX_DEPTH + 5)),
        thread("no-id", [comment("x")], identifier="has spaces, not an id"),
    ]


def test_import_shows_threads_as_written_and_a_second_run_adds_nothing(
    engine: Engine, client: TestClient, event_count: Callable[[], int]
) -> None:
    first = run(engine, ListSource(blog()))
    assert (first.threads_imported, first.comments_imported) == (3, 7 + MAX_DEPTH + 5 + 1)
    assert (first.parents_missing, first.flattened) == (1, 5)
    assert first.thread_ids_from == {"identifier": 2, "url": 1}
    events = event_count()

    again = run(engine, ListSource(blog()))
    assert event_count() == events
    assert (again.threads_imported, again.threads_already_there, again.events_appended) == (
        0,
        3,
        0,
    )
    assert again.comments_already_there == first.comments_imported

    page = client.get("/v1/threads/post-a/comments", params={"replies": 5}).json()
    top = {c["author"]["name"] if c["author"] else None: c for c in page["comments"]}
    first_comment = page["comments"][0]
    assert first_comment["created_at"].startswith("2015-03-01T12:01:00")
    with engine.connect() as conn:
        threads = LIVE.threads
        began = conn.execute(
            sa.select(threads.c.created_at).where(threads.c.thread_id == "post-a")
        ).scalar()
    assert as_utc(began) == START + timedelta(minutes=1)  # its oldest comment, not the import
    assert first_comment["like_count"] == 5  # four counted by the source, one by bob
    assert [r["author"]["name"] for r in first_comment["replies"]] == ["Bob"]
    assert first_comment["replies"][0]["replies"][0]["author"]["name"] == "Cat"
    assert first_comment["reply_count"] == 1  # the deleted reply counts nowhere
    assert "Ann" in top  # the orphan, at the top level
    bodies = [c["body_html"] for c in page["comments"]]
    assert not any("never imported" in (b or "") for b in bodies)
    assert page["comment_count"] == 4  # 1, 2, 3 and the orphan: not held, rejected, deleted

    with engine.connect() as conn:
        depth = conn.execute(sa.text("SELECT max(depth) FROM comment_view")).scalar()
        deleted = (
            conn.execute(sa.text("SELECT body FROM comment_view WHERE deleted")).scalars().all()
        )
    assert depth == MAX_DEPTH - 1
    assert deleted == [None]
    assert verify(engine).ok


def test_a_thread_without_an_identifier_is_found_by_its_url(
    engine: Engine, client: TestClient
) -> None:
    run(engine, ListSource(blog()))
    found = client.get("/v1/threads", params={"url": "https://blog.example/no-id"})
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["id"] == url_thread_id("https://blog.example/no-id")
    assert body == client.get(f"/v1/threads/{body['id']}").json()
    assert (
        client.get("/v1/threads", params={"url": "https://blog.example/a"}).json()["id"] == "post-a"
    )
    missing = client.get("/v1/threads", params={"url": "https://blog.example/none"})
    assert missing.status_code == 404


def test_an_interrupted_import_run_again_continues(
    engine: Engine, event_count: Callable[[], int]
) -> None:
    threads = [thread(f"t{i}", chain(f"c{i}-", 3)) for i in range(10)]
    with pytest.raises(KeyboardInterrupt):
        run(engine, ListSource(threads, fail_after=7), batch_comments=6)
    with engine.connect() as conn:
        done = conn.execute(sa.text("SELECT count(*) FROM thread_state")).scalar()
    # Two whole batches of two threads; the third was planned (its bodies rendering) and is
    # written only once the fourth is planned, which never happened.
    assert done == 4

    rest = run(engine, ListSource(threads), batch_comments=6)
    assert (rest.threads_already_there, rest.threads_imported) == (4, 6)
    assert rest.comments_imported == 18
    assert event_count() == 10 * (1 + 3)
    assert verify(engine).ok


def test_one_bad_thread_among_many_leaves_the_others_imported(
    engine: Engine, store: EventStore, auth: Auth, client: TestClient
) -> None:
    # A comment id already taken by a native comment of another thread: refused by the
    # database in the middle of a batch.
    taken = client.post(
        "/v1/threads/native/comments", headers=auth("zed"), json={"body": "mine"}
    ).json()["id"]
    threads = [thread(f"t{i}", [comment(f"c{i}"), comment(f"r{i}", f"c{i}")]) for i in range(100)]
    threads[40] = thread("cycle", [comment("p", "q"), comment("q", "p")])
    threads[70] = thread("clash", [comment("k", comment_id=taken), comment("k2", "k")])
    report = run(engine, ListSource(threads), batch_comments=30)
    assert report.threads_imported == 98
    assert report.threads_skipped == {"reply cycle": 1, "refused by the database": 1}
    assert {key for key, _ in report.skipped_thread_keys} == {"cycle", "clash"}
    with engine.connect() as conn:
        threads_written = conn.execute(sa.text("SELECT count(*) FROM thread_state")).scalar()
        clash = conn.execute(
            sa.text("SELECT count(*) FROM streams WHERE stream_id = 'post-clash'")
        ).scalar()
    assert threads_written == 98 + 1  # and the native one
    assert clash == 0
    assert verify(engine).ok


def test_imported_comments_notify_no_one_even_after_a_rebuild(
    engine: Engine, store: EventStore, auth: Auth, client: TestClient
) -> None:
    def write(method: str, path: str, user: str, **body: object) -> dict[str, object]:
        headers = auth(user, roles=["admin"], email=f"{user}@example.com")
        response = client.request(method, path, headers=headers, json=body or None)
        assert response.status_code in (200, 201), response.text
        result: dict[str, object] = response.json()
        return result

    def fold() -> None:
        fold_all(engine, store, "post-a", [thread_projection(), notification_projection()])

    write("PUT", "/v1/threads/post-a", "admin", title="A post")
    write("POST", "/v1/threads/post-a/comments", "ann", body="native first")
    write("PUT", "/v1/threads/post-a/subscription", "dan", level="watching")
    fold()
    run(engine, ListSource([thread("a", [comment("1", who="cat"), comment("2", "1", who="ann")])]))

    def rows() -> tuple[list[tuple[str, str, str]], set[str]]:
        with engine.connect() as conn:
            notified = conn.execute(
                sa.select(
                    notifications.c.recipient_id, notifications.c.kind, notifications.c.comment_id
                )
            ).all()
            emailed = set(conn.execute(sa.select(email_outbox.c.comment_id)).scalars())
        return sorted((r.recipient_id, r.kind, r.comment_id) for r in notified), emailed

    assert rows() == ([], set())
    # A native reply to an imported comment notifies as any reply would: the imported
    # authors above it (who may be Chorus users, from a `chorus` export) and the watchers.
    page = client.get("/v1/threads/post-a/comments").json()
    cats = next(c for c in page["comments"] if c["author"]["id"] == "import:disqus:cat")
    reply = write("POST", "/v1/threads/post-a/comments", "bob", body="hi", parent_id=cats["id"])
    fold()
    native = str(reply["id"])
    after_reply = rows()
    assert after_reply == (
        [
            ("dan", "thread", native),
            ("import:disqus:ann", "conversation", native),
            ("import:disqus:cat", "reply", native),
        ],
        {native},
    )

    rebuild_notifications(engine, store)
    assert rows() == after_reply
    assert verify(engine).ok


def test_a_dry_run_appends_nothing_and_says_what_it_would(
    engine: Engine, event_count: Callable[[], int]
) -> None:
    before = event_count()
    report = run(engine, ListSource(blog()), dry_run=True)
    assert event_count() == before
    assert report.threads_imported == 3
    assert report.comments_imported == 7 + MAX_DEPTH + 5 + 1


@pytest.fixture
def cli_formats(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[None]:
    monkeypatch.setitem(formats.READERS, "malformed", ("tests.import_sources", "Malformed"))
    monkeypatch.setitem(formats.READERS, "small", ("tests.import_sources", "Small"))
    monkeypatch.setenv("CHORUS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CHORUS_REDIS_URL", settings.redis_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_formats")
def test_chorus_import_refuses_a_malformed_file_naming_the_place(
    tmp_path: Path, event_count: Callable[[], int]
) -> None:
    before = event_count()
    export = tmp_path / "export.xml"
    export.write_text("<disqus/>")
    result = CliRunner().invoke(app, ["import", str(export), "--format", "malformed"])
    assert result.exit_code == 1
    assert 'line 12 (<post dsq:id="7">): <thread> is missing' in result.output
    assert event_count() == before


@pytest.mark.usefixtures("cli_formats")
def test_chorus_import_reports(tmp_path: Path, engine: Engine) -> None:
    export = tmp_path / "export.xml"
    export.write_text("<disqus/>")
    args = ["import", str(export), "--format", "small", "--fold", "here"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "threads imported: 1 (id from identifier: 1)" in result.output
    assert "threads skipped: 1 (no identifier and no url: 1)" in result.output
    assert "comments imported: 2" in result.output
    again = CliRunner().invoke(app, args)
    assert "threads already there: 1" in again.output
    assert "events appended: 0" in again.output
    with engine.connect() as conn:
        created = conn.execute(sa.text("SELECT min(created_at) FROM comment_view")).scalar()
    assert str(created).startswith(str(START.date()))


def test_bodies_rendered_in_a_pool_read_as_rendered_here(engine: Engine) -> None:
    # Three batches of 300 bodies: each renders in the pool while the one before is written.
    threads = [
        thread(f"t{i}", [comment(f"{i}-{j}", body=f"*{i}* and `{j}`") for j in range(30)])
        for i in range(30)
    ]
    importer = Importer(engine, ListSource(threads), render_processes=2, batch_comments=300)
    report = importer.run()
    assert report.comments_imported == 900
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT body, body_html FROM comment_view")).all()
    assert len(rows) == 900
    assert all(html == render_markdown(body) for body, html in rows)
    assert verify(engine).ok


FIXTURES = Path(__file__).parent.parent / "fixtures" / "imports"


@pytest.mark.usefixtures("cli_formats")
def test_the_real_fixtures_import_and_agree_with_the_log(
    engine: Engine, client: TestClient
) -> None:
    for format_name, name in (
        ("disqus", "disqus-isso.xml"),
        ("wordpress", "wordpress-remark42.xml"),
        ("isso", "isso-comments.db"),
    ):
        args = ["import", str(FIXTURES / name), "--format", format_name, "--fold", "here"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        again = CliRunner().invoke(app, args)
        assert "events appended: 0" in again.output, again.output
    with engine.connect() as conn:
        urls = conn.execute(sa.text("SELECT url FROM thread_view WHERE url IS NOT NULL")).scalars()
        url = sorted(urls)[0]
    found = client.get("/v1/threads", params={"url": url})
    assert found.status_code == 200
    assert found.json()["url"] == url
    assert verify(engine).ok


class _CountingPool(RenderPool):
    def __init__(self) -> None:
        super().__init__(processes=1)
        self.started: list[str] = []

    def start(self, bodies: list[str]) -> Rendering:
        self.started.extend(bodies)
        return Rendering([])  # rendered when asked, in this process


def test_a_second_run_renders_nothing_ahead(engine: Engine) -> None:
    threads = [thread(f"t{i}", [comment(f"{i}-{j}") for j in range(3)]) for i in range(4)]
    pool = _CountingPool()
    first = Importer(engine, ListSource(threads))
    first.pool = pool
    first._run()
    assert len(pool.started) == 12  # every body, ahead of its batch

    pool.started.clear()
    again = Importer(engine, ListSource([*threads, thread("new", [comment("n")])]))
    again.pool = pool
    assert again._run().threads_imported == 1
    assert pool.started == ["comment n"]  # the new thread's only: the others are there
