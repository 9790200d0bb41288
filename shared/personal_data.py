"""Which fields of which events are personal, and whose (decision 33).

A person's name and words never stay in the `events` row: `EventStore` splits them out at
append into `personal_data` (one row per event, keyed by its id, with the person it is
about as `subject_id`) and merges them back when it reads, so every consumer sees
`StoredEvent.data` whole. Erasing a person deletes their rows there; the log row keeps
"" in each field's place, which is what a read returns afterwards.

A field is named by its path in the event's data (`author.name`). The subject is read
from the data or, for an edit (only the author may edit), from the metadata's actor.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# What a personal field reads as once it is split out and its person erased.
BLANK = ""

Subject = Callable[[dict[str, Any], dict[str, Any]], str | None]


def _author(data: dict[str, Any], _metadata: dict[str, Any]) -> str | None:
    author = data.get("author")
    return author.get("id") if isinstance(author, dict) else None


def _actor(_data: dict[str, Any], metadata: dict[str, Any]) -> str | None:
    actor = metadata.get("actor")
    return actor.get("id") if isinstance(actor, dict) else None


def _user(data: dict[str, Any], _metadata: dict[str, Any]) -> str | None:
    user = data.get("user_id")
    return user if isinstance(user, str) else None


@dataclass(frozen=True, slots=True)
class PersonalFields:
    """An event type's personal fields (paths into its data) and whose they are."""

    paths: tuple[tuple[str, ...], ...]
    subject: Subject


PERSONAL_FIELDS: dict[str, PersonalFields] = {
    "CommentPosted": PersonalFields((("author", "name"), ("body",)), _author),
    "CommentEdited": PersonalFields((("body",),), _actor),
    "CommentFlagged": PersonalFields((("note",),), _user),
}


@dataclass(frozen=True, slots=True)
class Split:
    """An event's data as the log keeps it, and what goes to `personal_data` (if anything)."""

    data: dict[str, Any]
    subject_id: str | None  # None: nothing personal to keep
    fields: dict[str, Any]


def split(event_type: str, data: dict[str, Any], metadata: dict[str, Any]) -> Split:
    """Blank the event's personal fields; return them keyed by dotted path.

    Empty fields (a flag without a note) are not personal data: nothing to keep."""
    spec = PERSONAL_FIELDS.get(event_type)
    if spec is None:
        return Split(data, None, {})
    fields: dict[str, Any] = {}
    blanked = data
    for path in spec.paths:
        value = _get(data, path)
        if value in (None, BLANK):
            continue
        fields[".".join(path)] = value
        blanked = _set(blanked, path, BLANK)
    subject = spec.subject(data, metadata) if fields else None
    if subject is None:
        return Split(data, None, {})
    return Split(blanked, subject, fields)


def merge(data: dict[str, Any], fields: dict[str, Any] | None) -> dict[str, Any]:
    """The event's data with its personal fields put back (unchanged if there are none)."""
    if not fields:
        return data
    merged = data
    for dotted, value in fields.items():
        merged = _set(merged, tuple(dotted.split(".")), value)
    return merged


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `data` with `path` set: the caller's dicts are never changed."""
    head, *rest = path
    copy = dict(data)
    if rest:
        inner = copy.get(head)
        copy[head] = _set(inner if isinstance(inner, dict) else {}, tuple(rest), value)
    else:
        copy[head] = value
    return copy
