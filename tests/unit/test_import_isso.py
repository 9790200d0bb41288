"""Isso's SQLite database into the import model, on a database Isso 0.14.0's own code wrote
(tests/fixtures/imports/README.md) and damaged copies of it."""

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from services.worker.imports.isso import IssoSource
from services.worker.imports.model import MalformedFile, SkippedThread, SourceThread

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "imports" / "isso-comments.db"


def read(path: Path) -> list[SourceThread | SkippedThread]:
    return list(IssoSource(path).threads())


def refusal(path: Path) -> MalformedFile:
    with pytest.raises(MalformedFile) as caught:
        read(path)
    return caught.value


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    path = tmp_path / "comments.db"
    shutil.copy(FIXTURE, path)
    return path


def change(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


def test_isso_database() -> None:
    hello, about = read(FIXTURE)
    assert isinstance(hello, SourceThread)
    assert isinstance(about, SourceThread)
    assert (hello.key, hello.identifier, hello.url, hello.title) == (
        "/2014/hello-world/",
        "/2014/hello-world/",
        "/2014/hello-world/",
        "Hello, World",
    )
    assert (about.key, about.title) == ("/about/", None)
    assert [(c.key, c.parent_key, c.status, c.deleted, c.likes) for c in hello.comments] == [
        ("1", None, "published", False, 3),
        ("2", "1", "published", False, 0),
        ("3", "1", "published", False, 0),  # Isso filed the reply to 2 under 1
        ("4", None, "pending", False, 0),
        ("5", None, "published", True, 0),  # deleted, kept for its reply
        ("6", "5", "published", False, 1),
    ]
    first = hello.comments[0]
    assert first.body == "First! Isso stores *markdown*:\n\n- a list\n- `code`"
    assert first.posted_at.isoformat() == "2014-01-14T17:53:20+00:00"
    assert hello.comments[4].body == ""
    (edited,) = about.comments
    assert edited.body == "Nice page (edited)"
    assert edited.edited_at is not None
    assert edited.edited_at.isoformat() == ("2014-01-14T18:01:40+00:00")


def test_authors_are_hashes() -> None:
    threads = [t for t in read(FIXTURE) if isinstance(t, SourceThread)]
    authors = [c.author for t in threads for c in t.comments]
    assert all("@" not in a.id and a.id.startswith("import:isso:") for a in authors)
    ann = [a for a in authors if a.name == "Ann"]
    assert len(ann) == 2
    assert ann[0] == ann[1]
    assert ann[0].id.startswith("import:isso:e-")
    by_key = {c.key: c.author for t in threads for c in t.comments}
    assert by_key["2"].id.startswith("import:isso:n-")  # Bob, no email
    assert by_key["3"].id == "import:isso:anonymous"  # no name, no email
    assert by_key["5"].id.startswith("import:isso:e-")  # deleted: Isso kept the email only
    assert by_key["5"].name == "Anonymous"


def test_the_database_is_read_only(copy: Path) -> None:
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    read(copy)
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in copy.parent.iterdir()) == ["comments.db"]


def test_orphans_and_empty_threads(copy: Path) -> None:
    change(
        copy,
        "DROP TRIGGER remove_stale_threads",
        "INSERT INTO threads (id, uri, title) VALUES (3, '/empty/', 'Empty')",
        "UPDATE comments SET tid = 9 WHERE id = 7",
    )
    threads = read(copy)
    assert [(type(t).__name__, t.key) for t in threads] == [
        ("SourceThread", "/2014/hello-world/"),
        ("SkippedThread", "tid 9"),
        ("SkippedThread", "/about/"),
        ("SkippedThread", "/empty/"),
    ]
    assert [t.reason for t in threads if isinstance(t, SkippedThread)] == [
        "thread missing",
        "no comments",
        "no comments",
    ]


def test_an_unknown_mode_is_refused_naming_the_row(copy: Path) -> None:
    change(copy, "UPDATE comments SET mode = 8 WHERE id = 3")
    error = refusal(copy)
    assert (error.where, error.problem) == (
        "row 3 of table comments (id 3)",
        "mode 8 is not one Isso writes (1, 2 or 4)",
    )


def test_a_file_that_is_not_isso_is_refused(tmp_path: Path, copy: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to have a header " * 20)
    assert refusal(text).problem.startswith("not an SQLite database")

    other = tmp_path / "other.db"
    change(other, "CREATE TABLE threads (id INTEGER, uri TEXT, title TEXT)")
    error = refusal(other)
    assert (error.where, error.problem) == (
        "table comments",
        "missing: this is not an Isso database",
    )

    change(copy, "ALTER TABLE comments DROP COLUMN likes")
    error = refusal(copy)
    assert (error.where, error.problem) == ("table comments", "column likes is missing")

    assert refusal(tmp_path / "nowhere.db").problem == "no such file"
