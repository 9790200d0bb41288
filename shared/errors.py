"""Errors the write model raises. The API maps each kind to an HTTP status."""


class ChorusError(Exception):
    """A refusal with a stable machine-readable code and a human message."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(ChorusError):
    code = "invalid_input"


class NotFound(ChorusError):
    code = "not_found"


class Forbidden(ChorusError):
    code = "forbidden"


class Conflict(ChorusError):
    code = "conflict"


class ConcurrencyError(ChorusError):
    """The stream moved past the version the writer expected."""

    code = "concurrency_conflict"


class IdempotencyKeyReused(ChorusError):
    code = "idempotency_key_reused"


class StoreUnavailable(ChorusError):
    code = "unavailable"


class Unauthorized(ChorusError):
    code = "unauthorized"


class Busy(ChorusError):
    """Too much contention on one thread: the client should retry shortly."""

    code = "busy"
