"""Stream an XML export as small records (a Disqus `<post>`, a WordPress `<item>`), never the
whole document, each with the line it starts on so a fault can be named.

Both XML formats we read are a long flat list of records under a root. The parser is
defusedxml's (entity declarations, external entities and DTD tricks are refused: an export
is a file from outside), driven by a target of our own instead of a tree builder: nothing
but the record being read is ever held, so memory is flat however long the file, and
expat's position is at hand when a record starts (iterparse hides its parser, so it could
say *that* a `<post>` lacks its `<thread>` but not *where*).

Names are local (`{http://disqus.com}post` -> `post`, `wp:comment_id` -> `comment_id`):
the formats' namespace URIs change with their versions (WXR 1.0, 1.1, 1.2) while the
element names have not.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from .model import MalformedFile

_CHUNK = 1 << 20


@dataclass(slots=True)
class Record:
    """One record element: the text of each element inside it by relative path
    (`author/name`), the attributes of each (`thread` -> {"id": "7"}), its sub-records."""

    tag: str
    attrs: dict[str, str]
    line: int
    column: int
    namespace: str
    texts: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    children: list["Record"] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.column}"

    def text(self, path: str) -> str:
        """The element's text, stripped; "" when absent or empty."""
        return self.texts.get(path, "").strip()


_NAMES: dict[str, tuple[str, str]] = {}


def _local(name: str) -> tuple[str, str]:
    """expat's `uri}local` (the separator ElementTree asks for) as (uri, local)."""
    split = _NAMES.get(name)
    if split is None:
        namespace, _, local = name.rpartition("}")
        split = _NAMES[name] = (namespace, local)
    return split


class _Target:
    """The parser's handlers: keep the open record (and its open sub-record) only. Outside
    a record the path from the root is tracked (to find records); inside one, the stack
    of relative paths (`author/name`) of the open elements. Called for every element of
    a large file, so they do little."""

    def __init__(
        self,
        record_paths: frozenset[tuple[str, ...]],
        sub_record: str | None,
        position: Callable[[], tuple[int, int]],
    ) -> None:
        self._record_paths = record_paths
        self._sub_record = sub_record
        self._position = position
        self._path: list[str] = []
        self._record: Record | None = None
        self._sub: Record | None = None
        self._open: Record | None = None  # the sub-record if one is open, else the record
        self._rel: list[str] = []
        self._text: list[str] = []
        self.root: tuple[str, str] | None = None
        self.done: list[Record] = []

    def start(self, tag: str, attrib: list[str]) -> None:
        namespace, local = _NAMES.get(tag) or _local(tag)
        rel = self._rel
        record = self._open
        if record is None:
            if self.root is None:
                self.root = (namespace, local)
            self._path.append(local)
            if tuple(self._path) in self._record_paths:
                line, column = self._position()
                self._record = self._open = Record(local, _attrs(attrib), line, column, namespace)
            return
        if not rel and local == self._sub_record and self._sub is None:
            line, column = self._position()
            self._sub = self._open = Record(local, _attrs(attrib), line, column, namespace)
            return
        key = f"{rel[-1]}/{local}" if rel else local
        rel.append(key)
        self._text = []
        if attrib:
            record.attributes[key] = _attrs(attrib)

    def data(self, data: str) -> None:
        if self._rel:
            self._text.append(data)

    def end(self, tag: str) -> None:
        rel = self._rel
        if rel:
            if self._text:
                self._open.texts[rel[-1]] = "".join(self._text)  # type: ignore[union-attr]
                self._text = []
            rel.pop()
            return
        if self._sub is not None:
            self._record.children.append(self._sub)  # type: ignore[union-attr]
            self._sub = None
            self._open = self._record
            return
        if self._record is not None:
            self.done.append(self._record)
            self._record = self._open = None
        self._path.pop()


def _attrs(attrib: list[str]) -> dict[str, str]:
    """expat's ordered attributes (name, value, name, value, ...) by local name."""
    if not attrib:
        return {}
    return {_local(attrib[i])[1]: attrib[i + 1] for i in range(0, len(attrib), 2)}


class _NoTree:
    """What the parser is built with: no tree (our handlers replace ElementTree's)."""

    def close(self) -> None:
        return None


def read_records(
    path: Path,
    record_paths: frozenset[tuple[str, ...]],
    sub_record: str | None = None,
    check_root: Callable[[str, str], None] | None = None,
) -> Iterator[Record]:
    """Every record of the file in order. A file that is not well-formed XML, or that
    declares entities, raises `MalformedFile` at the place expat stopped."""
    if not path.is_file():
        raise MalformedFile(str(path), "no such file")
    with path.open("rb") as stream:
        yield from _records(stream, record_paths, sub_record, check_root)


def _records(
    stream: IO[bytes],
    record_paths: frozenset[tuple[str, ...]],
    sub_record: str | None,
    check_root: Callable[[str, str], None] | None,
) -> Iterator[Record]:
    parser: DefusedXMLParser

    def position() -> tuple[int, int]:
        expat = parser.parser
        return int(expat.CurrentLineNumber), int(expat.CurrentColumnNumber) + 1

    target = _Target(record_paths, sub_record, position)
    # defusedxml builds and hardens the expat parser (DTDs, entity declarations and external
    # entities raise); our handlers then take elements and text straight from expat,
    # without ElementTree's layer in between (twice as fast on a large export).
    parser = DefusedXMLParser(target=_NoTree(), forbid_dtd=True)
    expat = parser.parser
    expat.StartElementHandler = target.start
    expat.EndElementHandler = target.end
    expat.CharacterDataHandler = target.data
    checked = False
    while True:
        chunk = stream.read(_CHUNK)
        try:
            if chunk:
                parser.feed(chunk)
            else:
                parser.close()
        except ParseError as error:
            line, column = error.position
            raise MalformedFile(f"line {line}, column {column + 1}", _problem(error)) from None
        except DefusedXmlException as error:
            line, column = position()
            raise MalformedFile(f"line {line}, column {column}", str(error)) from None
        if not checked and target.root is not None:
            checked = True
            if check_root is not None:
                check_root(*target.root)
        if target.done:
            yield from target.done
            target.done = []
        if not chunk:
            return


def _problem(error: ParseError) -> str:
    """expat's message without the position (which `where` says)."""
    message = str(error)
    head, sep, _ = message.rpartition(": line ")
    return head if sep else message
