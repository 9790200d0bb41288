"""Reading Chorus's own export format back (services/worker/imports/chorus_format.py).

A good file becomes the model's threads, thread by thread; a file the writer would never
write is refused whole, naming its line.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.worker.imports.chorus_format import ChorusExport
from services.worker.imports.model import (
    MalformedFile,
    Source,
    SourceAuthor,
    SourceComment,
    SourceThread,
)

HEADER = {"format": "chorus", "version": 1, "exported_at": "2026-11-30T05:00:00.000000Z"}


def thread(thread_id: str = "t1", **changes: Any) -> dict[str, Any]:
    line = {
        "type": "thread",
        "id": thread_id,
        "title": "A story",
        "url": "https://news.example/a-story",
        "locked": False,
        "created_at": "2026-01-02T03:04:05.000006Z",
    }
    return line | changes


def comment(comment_id: str, thread_id: str = "t1", **changes: Any) -> dict[str, Any]:
    line = {
        "type": "comment",
        "id": comment_id,
        "thread_id": thread_id,
        "parent_id": None,
        "author": {"id": "ann", "name": "Ann"},
        "body": f"text of {comment_id}",
        "created_at": "2026-01-02T03:05:00.000000Z",
        "edited_at": None,
        "status": "published",
        "deleted": False,
        "likes": 0,
        "liked_by": [],
    }
    return line | changes


def end(threads: int, comments: int) -> dict[str, Any]:
    return {"type": "end", "threads": threads, "comments": comments}


def write(tmp_path: Path, *lines: dict[str, Any] | str) -> Path:
    path = tmp_path / "export.jsonl"
    text = "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines)
    path.write_text(text, encoding="utf-8")
    return path


def read(path: Path) -> list[SourceThread]:
    threads = list(ChorusExport(path).threads())
    assert all(isinstance(t, SourceThread) for t in threads)
    return threads  # type: ignore[return-value]


def refusal(path: Path) -> MalformedFile:
    with pytest.raises(MalformedFile) as caught:
        read(path)
    return caught.value


def test_a_good_file_reads_as_threads_with_their_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        thread("t1", locked=True),
        comment("c1", likes=3, liked_by=["bob", "cy"], edited_at="2026-01-03T00:00:00+00:00"),
        comment("c2", parent_id="c1", author={"id": "bob", "name": "Bob"}, status="pending"),
        comment(
            "c3",
            parent_id="c1",
            deleted=True,
            body=None,
            author={"id": "cy", "name": ""},
            status="rejected",
        ),
        thread("t2", title=None, url=None),
        end(2, 3),
    )
    source: Source = ChorusExport(path)
    assert source.name == "chorus"
    t1, t2 = read(path)
    assert (t1.key, t1.identifier, t1.title, t1.url, t1.locked) == (
        "t1",
        "t1",
        "A story",
        "https://news.example/a-story",
        True,
    )
    assert t1.created_at == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert t1.comments[0] == SourceComment(
        key="c1",
        parent_key=None,
        author=SourceAuthor("ann", "Ann"),
        body="text of c1",
        posted_at=datetime(2026, 1, 2, 3, 5, tzinfo=UTC),
        likes=3,
        liked_by=("bob", "cy"),
        comment_id="c1",
        edited_at=datetime(2026, 1, 3, tzinfo=UTC),
    )
    reply, gone = t1.comments[1:]
    assert (reply.parent_key, reply.author, reply.status) == (
        "c1",
        SourceAuthor("bob", "Bob"),
        "pending",
    )
    assert (gone.deleted, gone.body, gone.status, gone.author.id) == (True, "", "rejected", "cy")
    assert (t2.title, t2.url, t2.comments) == (None, None, [])


def test_threads_are_yielded_one_at_a_time_and_the_file_can_be_read_again(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, HEADER, thread("t1"), comment("c1"), thread("t2"), end(2, 1))
    threads = ChorusExport(path).threads()
    first = next(threads)
    assert isinstance(first, SourceThread)
    assert first.key == "t1"
    assert [t.key for t in read(path)] == ["t1", "t2"]  # a second pass, while the first is open
    assert [t.key for t in threads] == ["t2"]


def test_blank_lines_and_unknown_fields_are_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER | {"written_by": "chorus 2"},
        "",
        thread("t1", colour="blue"),
        "   ",
        comment("c1", mood="calm"),
        end(1, 1),
        "",
    )
    assert [c.key for c in read(path)[0].comments] == ["c1"]


@pytest.mark.parametrize(
    ("lines", "where", "problem"),
    [
        ([], "line 1", "the file is empty"),
        ([thread()], "line 1", "not a chorus export"),
        ([{"format": "disqus", "version": 1}], "line 1", "not a chorus export"),
        ([HEADER | {"version": 2}], "line 1", "version 2 is not one this Chorus reads"),
        ([HEADER | {"version": True}], "line 1", "version True is not one"),
        ([HEADER | {"exported_at": "yesterday"}], "line 1", "'exported_at' must be an ISO 8601"),
        ([HEADER, thread(), '{"type": "comment", "id": '], "line 3", "not JSON"),
        ([HEADER, "[1, 2]"], "line 2", "a JSON object, not a list"),
        ([HEADER, '{"type": "thread", "type": "comment"}'], "line 2", "'type' comes twice"),
        ([HEADER, thread(), comment("c1", likes=float("nan"))], "line 3", "NaN is not"),
        ([HEADER, comment("c1")], "line 2", "comes before its thread 't1'"),
        ([HEADER, thread("t1"), comment("c1", "t2")], "line 3", "comes before its thread 't2'"),
        ([HEADER, thread("t1"), thread("t2"), comment("c1", "t1")], "line 4", "before its thread"),
        ([HEADER, thread(), comment("c1", parent_id="c9")], "line 3", "replies to 'c9'"),
        (
            [HEADER, thread(), comment("c2", parent_id="c1"), comment("c1")],
            "line 3",
            "a parent comes before its replies",
        ),
        ([HEADER, thread(), comment("c1"), comment("c1")], "line 4", "'c1' comes twice"),
        ([HEADER, thread("t1"), thread("t1")], "line 3", "thread 't1' comes twice"),
        ([HEADER, {"type": "vote"}], "line 2", "unknown line type 'vote'"),
        ([HEADER, thread(locked="no")], "line 2", "'locked' must be true or false, not the string"),
        ([HEADER, thread(id="")], "line 2", "'id' must be a non-empty string, not the string"),
        ([HEADER, thread(title=7)], "line 2", "'title' must be a string or null, not the number 7"),
        ([HEADER, thread(created_at="2026-01-02T03:04:05")], "line 2", "with its UTC offset"),
        ([HEADER, thread(created_at=None)], "line 2", "'created_at' must be an ISO 8601"),
        ([HEADER, {k: v for k, v in thread().items() if k != "url"}], "line 2", "'url' is missing"),
        ([HEADER, thread(), comment("c1", likes=True)], "line 3", "'likes' must be a whole number"),
        ([HEADER, thread(), comment("c1", likes=-1)], "line 3", "'likes' must be a whole number"),
        ([HEADER, thread(), comment("c1", likes="2")], "line 3", "'likes' must be a whole number"),
        ([HEADER, thread(), comment("c1", liked_by="bob")], "line 3", "'liked_by' must be a list"),
        ([HEADER, thread(), comment("c1", liked_by=[1])], "line 3", "'liked_by' must be a list"),
        ([HEADER, thread(), comment("c1", liked_by=["b", "b"])], "line 3", "names a user twice"),
        ([HEADER, thread(), comment("c1", author="ann")], "line 3", "'author' must be an object"),
        ([HEADER, thread(), comment("c1", author={"id": "ann"})], "line 3", "'name' is missing"),
        ([HEADER, thread(), comment("c1", status="spam")], "line 3", "status 'spam' is not one"),
        ([HEADER, thread(), comment("c1", body=None)], "line 3", "body is null exactly when"),
        ([HEADER, thread(), comment("c1", deleted=True)], "line 3", "body is null exactly when"),
        ([HEADER, thread(), comment("c1", edited_at=5)], "line 3", "'edited_at' must be an ISO"),
        ([HEADER, thread(), comment("c1", body="a\u0000b")], "line 3", "NUL character"),
        ([HEADER, thread(), '{"type": "comment", "id": "\\ud800"}'], "line 3", "lone surrogate"),
        ([HEADER, thread(), comment("c1"), end(1, 2)], "line 4", "counts 1 threads and 2"),
        ([HEADER, thread(), end(1, 0), thread("t2")], "line 4", "nothing may follow the end"),
        ([HEADER, thread(), comment("c1")], "line 3", "ends without its end line"),
    ],
)
def test_a_malformed_file_is_refused_naming_its_line(
    tmp_path: Path, lines: list[dict[str, Any] | str], where: str, problem: str
) -> None:
    path = write(tmp_path, *lines) if lines else tmp_path / "empty.jsonl"
    if not lines:
        path.write_bytes(b"")
    refused = refusal(path)
    assert refused.where == where
    assert problem in refused.problem
    assert str(refused).startswith(f"{where}: ")


def test_bytes_that_are_not_utf8_are_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(json.dumps(HEADER).encode() + b"\n" + b'{"type": "thread", "id": "\xff"}\n')
    refused = refusal(path)
    assert (refused.where, refused.problem) == ("line 2", "not UTF-8 (byte 27 of the line)")


def test_a_refusal_comes_before_any_thread_after_it_is_read(tmp_path: Path) -> None:
    """Threads before the fault are yielded (the engine reads the whole file once before it
    appends anything, so a fault anywhere refuses the file whole)."""
    path = write(tmp_path, HEADER, thread("t1"), thread("t2"), comment("c1", "t1"))
    threads = ChorusExport(path).threads()
    assert next(threads).key == "t1"
    with pytest.raises(MalformedFile, match="line 4"):
        next(threads)


def test_escapes_that_spell_text_are_read_and_those_that_do_not_are_refused(
    tmp_path: Path,
) -> None:
    emoji = '{"type": "comment", "id": "c1", "thread_id": "t1", "parent_id": null,'
    emoji += ' "author": {"id": "ann", "name": "\\ud83d\\ude00 \\\\u0000"}, "body": "ok",'
    emoji += ' "created_at": "2026-01-02T03:05:00Z", "edited_at": null, "status": "published",'
    emoji += ' "deleted": false, "likes": 0, "liked_by": []}'
    (only,) = read(write(tmp_path, HEADER, thread(), emoji, end(1, 1)))
    assert only.comments[0].author.name == "\U0001f600 \\u0000"  # a pair; a backslash

    nested = comment("c1", author={"id": "ann", "name": "A\u0000"})
    assert "NUL" in refusal(write(tmp_path, HEADER, thread(), nested, end(1, 1))).problem
    in_key = '{"type": "thread", "id": "t1", "\\udc00": 1}'
    assert "lone surrogate" in refusal(write(tmp_path, HEADER, in_key)).problem


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    refused = refusal(tmp_path / "nowhere.jsonl")
    assert (refused.where, refused.problem) == (str(tmp_path / "nowhere.jsonl"), "no such file")
