"""Counting the statements a piece of work costs: how tests prove a read stays cheap."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


class count_statements:  # noqa: N801 (used as a context manager, like a function)
    """The SELECTs an engine runs while the block runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def _count(self, *args: Any) -> None:
        if args[2].lstrip().upper().startswith(("SELECT", "WITH")):
            self.seen.append(args[2])

    def __enter__(self) -> "count_statements":
        sa.event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._count)
