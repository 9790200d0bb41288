"""Which reader reads which format: `chorus import --format NAME` -> a `Source`.

Imported lazily, by name, so the command starts fast and names the format whose reader
is missing rather than failing to start. Each reader is a class (or function) taking
the file's path and returning a `Source`; one with a `close()` (a staging file to
delete) is closed when the import ends (`close_source`).
"""

import importlib
from pathlib import Path

from services.worker.imports.model import Source

READERS: dict[str, tuple[str, str]] = {
    "disqus": ("services.worker.imports.disqus", "DisqusSource"),
    "wordpress": ("services.worker.imports.wordpress", "WordPressSource"),
    "isso": ("services.worker.imports.isso", "IssoSource"),
    "chorus": ("services.worker.imports.chorus_format", "ChorusExport"),
}


class UnknownFormat(Exception):
    pass


def open_source(format_name: str, path: Path) -> Source:
    if format_name not in READERS:
        raise UnknownFormat(f"unknown format {format_name!r}; known: {', '.join(READERS)}")
    module_name, attribute = READERS[format_name]
    try:
        reader = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownFormat(f"no reader for {format_name!r} in this build ({exc})") from exc
    source: Source = reader(path)
    return source


def close_source(source: Source) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        close()
