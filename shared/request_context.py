"""The id of the request being served, for logs: set by the API per request, and by the
worker per job (from the job's meta, so a fold logs the id of the write that caused it)."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


@contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Log with `request_id` inside the block; the previous value comes back after it."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)
