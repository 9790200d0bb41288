"""Disqus's XML export into the import model, on exports from public importers' test data
(tests/fixtures/imports/README.md) and small odd cases."""

import subprocess
import sys
from pathlib import Path

import pytest

from services.worker.imports.disqus import DisqusSource
from services.worker.imports.model import (
    MalformedFile,
    SkippedComment,
    SkippedThread,
    SourceThread,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
ROOT = Path(__file__).resolve().parents[2]


def read(path: Path, **options: int) -> list[SourceThread | SkippedThread]:
    with DisqusSource(path, **options) as source:  # type: ignore[arg-type]
        return list(source.threads())


def refusal(path: Path) -> MalformedFile:
    with pytest.raises(MalformedFile) as caught:
        read(path)
    return caught.value


def export(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">\n'
        + body
        + "</disqus>\n"
    )
    return path


def thread(key: str, *, id_: str = "", deleted: str = "false") -> str:
    return (
        f'<thread dsq:id="{key}"><id>{id_}</id><link>https://blog.example/{key}/</link>'
        f"<title>Post {key}</title><createdAt>2020-01-01T00:00:00Z</createdAt>"
        f"<isClosed>false</isClosed><isDeleted>{deleted}</isDeleted></thread>\n"
    )


def post(key: str, thread_key: str, *, extra: str = "", when: str = "2020-01-02T03:04:05Z") -> str:
    return (
        f'<post dsq:id="{key}"><message><![CDATA[<p>Post {key}</p>]]></message>'
        f"<createdAt>{when}</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam>"
        "<author><email>ann@example.org</email><name>Ann</name>"
        "<isAnonymous>true</isAnonymous></author>"
        f'<thread dsq:id="{thread_key}"/>{extra}</post>\n'
    )


def test_isso_test_export() -> None:
    """isso's own Disqus test export: an empty thread, a thread with an empty `<id/>` and no
    title, an orphan post, a deleted post with a reply, replies by `<parent>`."""
    threads = read(FIXTURES / "disqus-isso.xml")
    assert [(type(t).__name__, t.key) for t in threads] == [
        ("SourceThread", "2"),
        ("SkippedThread", "3"),
        ("SourceThread", "7"),
        ("SkippedThread", "1337"),
    ]
    first, empty, no_id, orphan = threads
    assert isinstance(first, SourceThread)
    assert isinstance(no_id, SourceThread)
    assert (first.identifier, first.url, first.title) == (
        "some-id",
        "http://example.org/",
        "Hello, World!",
    )
    assert [(c.key, c.parent_key, c.deleted, c.body) for c in first.comments] == [
        ("4", None, False, "..."),
        ("5", "4", False, "Hello, World."),
        ("9", None, True, ""),
        ("11", "9", False, "Hello, World."),
    ]
    assert first.comments[0].posted_at.isoformat() == "2013-10-10T19:20:29+00:00"
    assert (no_id.identifier, no_id.title) == (None, None)
    assert no_id.url == "http://localhost:4000/blog/2013/02/12/redacted/index.html"
    assert empty == SkippedThread("3", "no comments")
    assert orphan == SkippedThread("1337", "thread missing")


def test_authors_are_hashes_never_emails_or_usernames() -> None:
    threads = [t for t in read(FIXTURES / "disqus-isso.xml") if isinstance(t, SourceThread)]
    authors = {c.author for t in threads for c in t.comments}
    for author in authors:
        assert author.id.startswith("import:disqus:")
        assert "@" not in author.id
        assert "user" not in author.id.lower()
    by_name = {a.name: a.id for a in authors}
    # peter is an anonymous guest (email), user and Empty have accounts (username).
    assert by_name["peter"].startswith("import:disqus:e-")
    assert by_name["user"].startswith("import:disqus:u-")
    assert by_name["Empty"].startswith("import:disqus:u-")
    again = {c.author for t in read(FIXTURES / "disqus-isso.xml") if isinstance(t, SourceThread)
             for c in t.comments}  # fmt: skip
    assert again == authors  # stable across runs


def test_remark42_export_as_stored_is_refused_at_line_1() -> None:
    """remark42's test export starts with a stray backtick (a Go string's quote)."""
    error = refusal(FIXTURES / "disqus-remark42.xml")
    assert error.where == "line 1, column 1"
    assert error.problem == "not well-formed (invalid token)"


def test_remark42_export_faults_are_named_one_by_one(tmp_path: Path) -> None:
    text = (FIXTURES / "disqus-remark42.xml").read_text().removeprefix("`")
    lines = text.split("\n")
    unquoted = next(i for i, line in enumerate(lines, 1) if "dsq:id=247937687/" in line)
    no_id = next(i for i, line in enumerate(lines, 1) if line.strip() == "<post>")

    path = tmp_path / "a.xml"
    path.write_text(text)
    error = refusal(path)
    assert error.where.startswith(f"line {unquoted}, column ")
    assert "not well-formed" in error.problem

    last_post = text.rindex('    <post dsq:id="x299986073">')
    text = text[:last_post] + "</disqus>\n"
    path.write_text(text)
    error = refusal(path)
    assert (error.where, error.problem) == (f"line {no_id}, column 5", "<post> has no dsq:id")

    start = text.index("    <post>\n")
    end = text.index("</post>", start) + len("</post>")
    path.write_text(text[:start] + text[end:])
    threads = read(path)
    assert [t.key for t in threads] == ["247918464", "247937687"]
    first, second = threads
    assert isinstance(first, SourceThread)
    assert isinstance(second, SourceThread)
    assert (first.identifier, first.title) == (None, "Радио-Т: Радио-Т 229")  # noqa: RUF001
    assert second.identifier == "http://www.radio-t.com/p/2011/03/05/podcast-229/"
    assert second.locked
    assert not first.locked
    assert second.skipped == [SkippedComment("299986073", "spam")]
    link_post = second.comments[0]
    assert link_post.body == (
        "The quick brown fox jumps over the lazy dog.\n\n[some link](<https://https://radio-t.com>)"
    )
    assert first.comments[0].body.count("\\\n") == 3  # its <br>s
    assert first.comments[0].author.id.startswith("import:disqus:e-")  # no username


def test_deleted_threads_empty_messages_and_missing_parents(tmp_path: Path) -> None:
    path = export(
        tmp_path,
        thread("1", deleted="true")
        + thread("2", id_="post-2")
        + post("10", "1")
        + post("11", "2", extra='<parent dsq:id="999"/>')
        + post("12", "2").replace("<p>Post 12</p>", "<p> </p>"),
    )
    deleted, kept = read(path)
    assert deleted == SkippedThread("1", "thread deleted")
    assert isinstance(kept, SourceThread)
    assert [(c.key, c.parent_key) for c in kept.comments] == [("11", "999")]
    assert kept.skipped == [SkippedComment("12", "empty")]
    assert kept.identifier == "post-2"


@pytest.mark.parametrize(
    ("body", "where", "problem"),
    [
        (
            thread("1") + '<post dsq:id="5"><createdAt>2020-01-01T00:00:00Z</createdAt></post>\n',
            "line 4 (<post dsq:id='5'>)",
            "<thread dsq:id> is missing",
        ),
        (
            thread("1") + post("5", "1", when="31/12/2020"),
            "line 4 (<post dsq:id='5'>)",
            "<createdAt> '31/12/2020' is not a date and time",
        ),
        (
            thread("1") + post("5", "1") + post("6", "1") + post("5", "1"),
            "line 6 (<post dsq:id='5'>)",
            "the id repeats line 4's",
        ),
        (
            thread("1") + thread("1"),
            "line 4 (<thread dsq:id='1'>)",
            "the id repeats line 3's",
        ),
        (thread("1") + "<post>\n", "line 5, column 3", "mismatched tag"),
    ],
)
def test_malformed_exports_are_refused_naming_the_place(
    tmp_path: Path, body: str, where: str, problem: str
) -> None:
    error = refusal(export(tmp_path, body))
    assert (error.where, error.problem) == (where, problem)


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE disqus [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<disqus>&b;</disqus>\n'
    )
    error = refusal(path)
    assert error.where.startswith("line 2, column ")
    assert "DTD" in error.problem


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nowhere.xml").problem == "no such file"


def test_another_root_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rss.xml"
    path.write_text('<?xml version="1.0"?>\n<rss><channel/></rss>\n')
    assert refusal(path).problem == "the root element is <rss>, not <disqus>"


def test_read_twice_gives_the_same_and_close_removes_the_staging_file(tmp_path: Path) -> None:
    with DisqusSource(FIXTURES / "disqus-isso.xml", staging_dir=tmp_path) as source:
        first = list(source.threads())
        assert list(source.threads()) == first
        assert len(list(tmp_path.iterdir())) == 1
    assert list(tmp_path.iterdir()) == []


def test_generated_export_reads_the_same_with_worker_processes(tmp_path: Path) -> None:
    path = tmp_path / "generated.xml"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate_disqus.py"), "--output", str(path),
         "--posts", "3000", "--seed", "5"],
        check=True, capture_output=True,
    )  # fmt: skip
    again = tmp_path / "again.xml"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate_disqus.py"), "--output", str(again),
         "--posts", "3000", "--seed", "5"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert path.read_bytes() == again.read_bytes()  # deterministic

    alone = read(path, workers=1)
    assert read(path, workers=2) == alone
    threads = [t for t in alone if isinstance(t, SourceThread)]
    comments = [c for t in threads for c in t.comments]
    skipped = [s for t in threads for s in t.skipped]
    assert 2700 < len(comments) < 3000
    assert {s.reason for s in skipped} == {"spam"}
    assert 0 < sum(c.deleted for c in comments) < 150
    assert sum(c.parent_key is not None for c in comments) > 300
    assert any(isinstance(t, SkippedThread) and t.reason == "thread missing" for t in alone)
