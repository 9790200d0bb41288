"""What every request body is built from: one rule for text, one type for comment ids.

A NUL or a lone surrogate in any string of a body would reach a column or a log that
cannot hold it (a 500, and on PostgreSQL an aborted batch). `InputModel` refuses such a
body as a whole, before any field is looked at, wherever the string sits (a field, a
list item, a key, a field the model does not even have), so a new field cannot forget
the rule. Path and query strings get the same rule from `UnsafeTextMiddleware`.
"""

from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from shared.ids import COMMENT_ID_PATTERN, MAX_COMMENT_ID_CHARS
from shared.validation import has_unsafe_characters

INVALID_CHARACTERS = "invalid_characters"
"""The error type (and the API's error code) for text holding NUL or a lone surrogate."""

CommentIdItem = Annotated[
    str, StringConstraints(pattern=COMMENT_ID_PATTERN, max_length=MAX_COMMENT_ID_CHARS)
]


class InputModel(BaseModel):
    """The base of every request body."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsafe_text(cls, data: Any) -> Any:
        where = _unsafe_text_at(data)
        if where is not None:
            field = ".".join(where) or "the body"
            raise PydanticCustomError(
                INVALID_CHARACTERS,
                "{field} contains a NUL character or a lone surrogate",
                {"field": field},
            )
        return data


def _unsafe_text_at(data: Any) -> tuple[str, ...] | None:
    """Where in decoded JSON the first unsafe string is (a key counts), or None.

    Iterative: JSON nests as deep as the parser allows, deeper than Python should recurse.
    """
    pending: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if has_unsafe_characters(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and has_unsafe_characters(key):
                    return (*path, "(a key)")
                pending.append((item, (*path, str(key)[:50])))
        elif isinstance(value, list | tuple):
            pending.extend((item, (*path, str(i))) for i, item in enumerate(value))
    return None
