"""Chorus's own export format (`chorus export`), read back for `chorus import --format chorus`.

JSON lines, UTF-8, one object a line (docs/api.md "Moving in, moving out, being forgotten";
docs/decisions.md 36):

    {"format": "chorus", "version": 1, "exported_at": "..."}
    {"type": "thread", "id", "title", "url", "locked", "created_at"}
    {"type": "comment", "id", "thread_id", "parent_id", "author": {"id", "name"}, "body",
     "created_at", "edited_at", "status", "deleted", "likes", "liked_by"}
    ... each thread's comments right after it, a parent before its replies ...
    {"type": "end", "threads": N, "comments": M}

The end line makes a cut-short file (an export killed, a disk full, a copy interrupted)
a malformed one instead of a smaller one: without it the last thread would import with
part of its comments, silently. Fields a version-1 reader does not know are ignored, so a
later writer may add optional ones without a new version; a change of meaning is a new
version, which this reader refuses.

The reader is strict, because its files are written by a program: anything the writer
would not write (bad JSON, a comment outside its thread, a reply before its parent, a
field of the wrong type, NUL or a lone surrogate in a string) refuses the file whole,
naming its line. It keeps one thread in memory at a time, plus the ids of the threads
seen (a thread must not come twice).
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

from services.worker.imports.model import (
    CommentStatus,
    MalformedFile,
    SkippedThread,
    SourceAuthor,
    SourceComment,
    SourceThread,
)

FORMAT: Final = "chorus"
VERSION: Final = 1
STATUSES: Final[tuple[CommentStatus, ...]] = ("published", "pending", "rejected")


class ChorusExport:
    """A `chorus export` file as a `Source`: each `threads()` call reads it again."""

    name: Literal["chorus"] = "chorus"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        if not self.path.is_file():
            raise MalformedFile(str(self.path), "no such file")
        with self.path.open("rb") as lines:
            reader = _Reader()
            for number, raw in enumerate(lines, start=1):
                reader.line = number
                yield from reader.read(raw)
            reader.finish()


@dataclass
class _Thread:
    fields: dict[str, Any]
    comments: list[SourceComment] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def source(self) -> SourceThread:
        f = self.fields
        return SourceThread(
            key=f["id"],
            identifier=f["id"],
            url=f["url"],
            title=f["title"],
            comments=self.comments,
            created_at=f["created_at"],
            locked=f["locked"],
        )


class _Reader:
    """The reading state of one pass: what has been seen, and the thread being read."""

    def __init__(self) -> None:
        self.line = 0
        self.header_seen = False
        self.ended_at: int | None = None
        self.thread: _Thread | None = None
        self.thread_ids: set[str] = set()
        self.comments = 0

    def refuse(self, problem: str) -> NoReturn:
        raise MalformedFile(f"line {self.line}", problem)

    def read(self, raw: bytes) -> Iterator[SourceThread]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.refuse(f"not UTF-8 (byte {exc.start + 1} of the line)")
        if not text.strip():
            return  # blank lines (a trailing newline, an editor's) carry nothing
        if self.ended_at is not None:
            self.refuse(f"nothing may follow the end line (line {self.ended_at})")
        record = self.parse(text)
        if not self.header_seen:
            self.header(record)
            return
        kind = record.get("type")
        if kind == "thread":
            if self.thread is not None:
                yield self.thread.source()
            self.start_thread(record)
        elif kind == "comment":
            self.add_comment(record)
        elif kind == "end":
            if self.thread is not None:
                yield self.thread.source()
                self.thread = None
            self.end(record)
        else:
            self.refuse(f"unknown line type {kind!r}: expected thread, comment or end")

    def finish(self) -> None:
        if not self.header_seen:
            self.line = max(self.line, 1)
            self.refuse("the file is empty: a chorus export starts with its header line")
        if self.ended_at is None:
            self.refuse(
                "the file ends without its end line: it was cut short (an export or a copy"
                " that did not finish)"
            )

    def parse(self, text: str) -> dict[str, Any]:
        try:
            record = _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            self.refuse(f"not JSON (column {exc.colno}): {exc.msg}")
        except _Refused as exc:
            self.refuse(str(exc))
        if not isinstance(record, dict):
            self.refuse(f"each line is a JSON object, not {_kind(record)}")
        # Only an escape can put NUL or a surrogate in a string (raw control characters are
        # not JSON, and the line decoded as UTF-8): most lines need no walk.
        if _SUSPECT_ESCAPE.search(text):
            problem = _bad_string(record)
            if problem is not None:
                self.refuse(problem)
        return record

    def header(self, record: dict[str, Any]) -> None:
        if record.get("format") != FORMAT:
            self.refuse(
                'not a chorus export: its first line must be {"format": "chorus", "version": 1,'
                " ...}"
            )
        version = record.get("version")
        if version != VERSION or isinstance(version, bool):
            self.refuse(f"version {version!r} is not one this Chorus reads (it reads {VERSION})")
        _Fields(self, record, "header").moment("exported_at")
        self.header_seen = True

    def start_thread(self, record: dict[str, Any]) -> None:
        f = _Fields(self, record, "thread")
        thread_id = f.text("id")
        if thread_id in self.thread_ids:
            self.refuse(f"thread {thread_id!r} comes twice: each thread comes once, whole")
        self.thread_ids.add(thread_id)
        fields = {
            "id": thread_id,
            "title": f.text("title", null=True, empty=True),
            "url": f.text("url", null=True, empty=True),
            "locked": f.flag("locked"),
            "created_at": f.moment("created_at"),
        }
        self.thread = _Thread(fields)

    def add_comment(self, record: dict[str, Any]) -> None:
        f = _Fields(self, record, "comment")
        comment_id = f.text("id")
        f.of = comment_id
        thread_id = f.text("thread_id")
        thread = self.thread
        if thread is None or thread.fields["id"] != thread_id:
            self.refuse(
                f"comes before its thread {thread_id!r}: each thread's line comes first,"
                " then its comments"
            )
        if comment_id in thread.ids:
            self.refuse(f"comment {comment_id!r} comes twice in thread {thread_id!r}")
        parent_id = f.text("parent_id", null=True)
        if parent_id is not None and parent_id not in thread.ids:
            self.refuse(
                f"comment {comment_id!r} replies to {parent_id!r}, which is not an earlier"
                f" comment of thread {thread_id!r}: a parent comes before its replies"
            )
        author = _Fields(self, f.object("author"), "author of comment", comment_id)
        deleted = f.flag("deleted")
        body = f.text("body", null=True, empty=True)
        if deleted != (body is None):
            self.refuse(
                f"comment {comment_id!r}: body is null exactly when the comment is deleted"
                f" (deleted is {json.dumps(deleted)})"
            )
        status = f.text("status")
        if status not in STATUSES:
            self.refuse(f"comment {comment_id!r}: status {status!r} is not one of {STATUSES}")
        thread.comments.append(
            SourceComment(
                key=comment_id,
                parent_key=parent_id,
                author=SourceAuthor(id=author.text("id"), name=author.text("name", empty=True)),
                body=body or "",
                posted_at=f.moment("created_at"),
                deleted=deleted,
                likes=f.count("likes"),
                liked_by=f.user_ids("liked_by"),
                status=status,  # checked against STATUSES above
                comment_id=comment_id,
                edited_at=f.moment("edited_at", null=True),
            )
        )
        thread.ids.add(comment_id)
        self.comments += 1

    def end(self, record: dict[str, Any]) -> None:
        f = _Fields(self, record, "end")
        threads, comments = f.count("threads"), f.count("comments")
        if (threads, comments) != (len(self.thread_ids), self.comments):
            self.refuse(
                f"the end line counts {threads} threads and {comments} comments; the file"
                f" holds {len(self.thread_ids)} and {self.comments}"
            )
        self.ended_at = self.line


class _Fields:
    """One record's fields, each read as the type the format gives it, or refused.

    `what` names the record in a refusal ("comment", or "author of comment" with `of` set
    to its id); the label is built only when something is refused, since a million
    comments are read for every one refused."""

    __slots__ = ("of", "reader", "record", "what")

    def __init__(
        self, reader: _Reader, record: dict[str, Any], what: str, of: str | None = None
    ) -> None:
        self.reader, self.record, self.what, self.of = reader, record, what, of

    def _label(self) -> str:
        return self.what if self.of is None else f"{self.what} {self.of!r}"

    def _get(self, name: str) -> Any:
        if name not in self.record:
            self.reader.refuse(f"{self._label()}: field {name!r} is missing")
        return self.record[name]

    def _wrong(self, name: str, expected: str, value: Any) -> NoReturn:
        self.reader.refuse(
            f"{self._label()}: field {name!r} must be {expected}, not {_kind(value)}"
        )

    def text(self, name: str, *, null: bool = False, empty: bool = False) -> Any:
        value = self._get(name)
        if value is None and null:
            return None
        if not isinstance(value, str) or (not empty and not value):
            expected = "a string" if empty else "a non-empty string"
            self._wrong(name, f"{expected} or null" if null else expected, value)
        return value

    def flag(self, name: str) -> bool:
        value = self._get(name)
        if not isinstance(value, bool):
            self._wrong(name, "true or false", value)
        return value

    def count(self, name: str) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self._wrong(name, "a whole number, 0 or more", value)
        return value

    def moment(self, name: str, *, null: bool = False) -> Any:
        value = self._get(name)
        if value is None and null:
            return None
        expected = "an ISO 8601 time with its UTC offset" + (" or null" if null else "")
        if not isinstance(value, str):
            self._wrong(name, expected, value)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self._wrong(name, expected, value)
        if moment.tzinfo is None:
            self._wrong(name, expected, value)
        return moment

    def object(self, name: str) -> dict[str, Any]:
        value = self._get(name)
        if not isinstance(value, dict):
            self._wrong(name, "an object", value)
        return value

    def user_ids(self, name: str) -> tuple[str, ...]:
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self._wrong(name, "a list of user ids (non-empty strings)", value)
        if len(set(value)) != len(value):
            self.reader.refuse(f"{self._label()}: field {name!r} names a user twice")
        return tuple(value)


class _Refused(ValueError):
    """Raised from json's hooks for what JSON allows and the format does not."""


_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _Refused(f"key {key!r} comes twice in one object")
        record[key] = value
    return record


def _constant(name: str) -> NoReturn:
    raise _Refused(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)


def _bad_string(value: Any) -> str | None:
    """What is wrong with a string anywhere in `value` (keys included), if anything: NUL
    (no column takes it on PostgreSQL) or a lone surrogate (not text: it has no UTF-8)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a string holds a NUL character (\\u0000)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a string holds a lone surrogate (an unpaired \\ud800-\\udfff escape)"
        return None
    if isinstance(value, dict):
        items: Iterator[Any] = (x for pair in value.items() for x in pair)
    elif isinstance(value, list):
        items = iter(value)
    else:
        return None
    for item in items:
        problem = _bad_string(item)
        if problem is not None:
            return problem
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(shown, ensure_ascii=False)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else type(value).__name__
