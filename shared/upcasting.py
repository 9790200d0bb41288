"""Upcasting: old events stay as written and are brought to the current schema when read."""

from collections.abc import Callable
from typing import Any

from shared.events import EVENT_TYPES, DomainEvent

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]

# (event type, schema version it reads) -> function producing the next version's data.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcast(event_type: str, schema_version: int, data: Data) -> Data:
    current = EVENT_TYPES[event_type].schema_version
    while schema_version < current:
        data = UPCASTERS[(event_type, schema_version)](data)
        schema_version += 1
    return data


def to_domain(event_type: str, schema_version: int, data: Data) -> DomainEvent:
    return EVENT_TYPES[event_type].model_validate(upcast(event_type, schema_version, data))
