"""What every importer reads a source into: threads whole, each with its comments.

A source (`Source`) turns one export file into `SourceThread`s (or `SkippedThread`s for a
thread that cannot be imported), one at a time, so that memory stays flat however large
the file. The engine (`services.worker.imports.engine`) turns them into events; the
parsers never touch the database.

A source may be iterated more than once: the engine reads it whole once to refuse a
malformed file before anything is appended (and to count for the progress bar), then
again to import.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

SourceName = Literal["disqus", "wordpress", "isso", "chorus"]
CommentStatus = Literal["published", "pending", "rejected"]


class MalformedFile(Exception):
    """The file cannot be read as its format: refused whole, nothing appended.

    `where` names the place of the fault as a person can find it: `line 12, column 4`,
    `line 12 (<post dsq:id="7">): <thread> is missing`, `row 31 of table comments`."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True, slots=True)
class SourceAuthor:
    id: str
    """A Chorus user id. Importers from other tools give `import:<source>:<stable id>`
    (stable across runs, never an email address); the `chorus` format keeps its ids."""
    name: str


@dataclass(frozen=True, slots=True)
class SourceComment:
    key: str
    """The comment's id in the source, unique within the file."""
    parent_key: str | None
    author: SourceAuthor
    body: str
    """Chorus markdown, already converted from the source's HTML where it had any."""
    posted_at: datetime
    """When it was written, timezone-aware."""
    deleted: bool = False
    likes: int = 0
    """Likes the source counted without saying who (Isso's votes)."""
    liked_by: tuple[str, ...] = ()
    """Chorus user ids that like it (the `chorus` format)."""
    status: CommentStatus = "published"
    comment_id: str | None = None
    """Keep this Chorus id (the `chorus` format); None: the engine derives one from `key`."""
    edited_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SkippedComment:
    key: str
    reason: str
    """Short and stable, counted in the report: `spam`, `pingback`, `not approved`, ..."""


@dataclass(frozen=True, slots=True)
class SourceThread:
    key: str
    """The thread's id in the source (Disqus's dsq:id, WordPress's post id, Isso's uri)."""
    identifier: str | None
    """The publication's own id for the page (Disqus's <id>), if the source has one."""
    url: str | None
    title: str | None
    comments: list[SourceComment]
    """In the source's order; the engine imports them oldest first, parents before replies."""
    skipped: list[SkippedComment] = field(default_factory=list)
    created_at: datetime | None = None
    locked: bool = False


@dataclass(frozen=True, slots=True)
class SkippedThread:
    key: str
    reason: str


class Source(Protocol):
    name: SourceName

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        """Every thread of the file, in file order; may be called again to read it again.
        Raises `MalformedFile` naming the place when the file cannot be read."""
        ...
