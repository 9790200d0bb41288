"""Idempotent replays: a command's result, stored so that a later release can still answer it.

A record is `{"v": 1, "kind": "<result type>", "data": {<its fields>}}`: the result, not
the HTTP response, so a response model may change and old replays are shaped like new
answers. `decode` looks the record up in `DECODERS` by version and kind; a release that
renames or adds a required field keeps old records readable by registering a decoder for
them there. Records stored before results were typed (decision 17) are the response dict
itself, with the result type's field names; the command being replayed says its type.
"""

import functools
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from typing import Any, get_args

from shared.commands import Answers, Command
from shared.results import RESULT_TYPES, Result

VERSION = 1
Decoder = Callable[[Mapping[str, Any]], Result]


class UnreadableReplay(Exception):
    """A stored record no decoder of this release knows (written by a newer one?)."""


def encode(result: Result) -> dict[str, Any]:
    return {"v": VERSION, "kind": type(result).__name__, "data": asdict(result)}


def decode(record: Mapping[str, Any], command: Command) -> Result:
    """The result stored for `command` (a replay of the same request)."""
    expected = answer_type(type(command))
    if "v" in record:
        decoder = DECODERS.get((record["v"], str(record.get("kind"))))
        if decoder is None:
            raise UnreadableReplay(
                f"no decoder for replay record v{record['v']} {record.get('kind')}"
            )
        result = decoder(record["data"])
    else:
        result = _from_fields(expected, record)
    if not isinstance(result, expected):
        raise UnreadableReplay(f"a {type(result).__name__} was stored for {type(command).__name__}")
    return result


def answer_type(command_type: type[Any]) -> type[Result]:
    """The result type a command class declares with `Answers[...]`."""
    for base in getattr(command_type, "__orig_bases__", ()):
        if getattr(base, "__origin__", None) is Answers:
            answer: type[Result] = get_args(base)[0]
            return answer
    raise TypeError(f"{command_type.__name__} does not declare what it answers")


def _from_fields(result_type: type[Result], data: Mapping[str, Any]) -> Result:
    """The stored fields the type still has; a field added since with a default takes it,
    and one stored that the type no longer has is left out."""
    return result_type(**{f.name: data[f.name] for f in fields(result_type) if f.name in data})


DECODERS: dict[tuple[int, str], Decoder] = {
    (1, kind.__name__): functools.partial(_from_fields, kind) for kind in RESULT_TYPES
}
