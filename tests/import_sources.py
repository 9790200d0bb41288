"""Sources built in Python, for the import engine's tests (no parser needed)."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.worker.imports.model import (
    SkippedThread,
    SourceAuthor,
    SourceComment,
    SourceName,
    SourceThread,
)

START = datetime(2015, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class ListSource:
    """A `Source` over threads held in memory; `fail_after` threads, it raises (to
    interrupt an import)."""

    items: Sequence[SourceThread | SkippedThread]
    name: SourceName = "disqus"
    fail_after: int | None = None
    reads: int = field(default=0)

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        self.reads += 1
        for index, item in enumerate(self.items):
            if self.fail_after is not None and self.reads > 1 and index == self.fail_after:
                raise KeyboardInterrupt("interrupted by the test")
            yield item


def comment(
    key: str,
    parent: str | None = None,
    *,
    minute: int = 0,
    who: str = "ann",
    body: str | None = None,
    **extra: object,
) -> SourceComment:
    return SourceComment(
        key=key,
        parent_key=parent,
        author=SourceAuthor(id=f"import:disqus:{who}", name=who.title()),
        body=body if body is not None else f"comment {key}",
        posted_at=START + timedelta(minutes=minute),
        **extra,  # type: ignore[arg-type]
    )


def thread(
    key: str, comments: list[SourceComment], *, identifier: str | None = None, **extra: object
) -> SourceThread:
    return SourceThread(
        key=key,
        identifier=identifier if identifier is not None else f"post-{key}",
        url=f"https://blog.example/{key}",
        title=f"Post {key}",
        comments=comments,
        **extra,  # type: ignore[arg-type]
    )


def chain(prefix: str, length: int) -> list[SourceComment]:
    """`length` comments, each replying to the one before."""
    return [
        comment(f"{prefix}{i}", f"{prefix}{i - 1}" if i else None, minute=i) for i in range(length)
    ]


class Malformed:
    """A `chorus import` format whose files are all malformed (for the CLI's refusal)."""

    name: SourceName = "disqus"

    def __init__(self, _path: object) -> None:
        pass

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        from services.worker.imports.model import MalformedFile

        yield thread("fine", [comment("1")])
        raise MalformedFile('line 12 (<post dsq:id="7">)', "<thread> is missing")


class Small:
    """A `chorus import` format that reads any file as two small threads."""

    name: SourceName = "disqus"

    def __init__(self, _path: object) -> None:
        pass

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        yield thread("one", [comment("1"), comment("2", "1", minute=1)])
        yield SkippedThread("empty", "no identifier and no url")
