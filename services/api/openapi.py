"""Shared OpenAPI declarations: the error body and the error responses routers declare.

Every error leaves as `{"error": {"code", "message"}}` (see `services.api.errors`); routers
list the statuses they can answer with through `APIRouter(responses=errors(401, 404, ...))`.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable, machine-readable code", examples=["not_found"])
    message: str = Field(description="A human-readable explanation", examples=["no such thing"])


class ErrorPublic(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": {"code": "not_found", "message": "comment 'c_x' not found"}}]
        }
    )

    error: ErrorDetail


def _error(description: str, code: str, message: str) -> dict[str, Any]:
    return {
        "model": ErrorPublic,
        "description": description,
        # Named explicitly: on a route whose success is HTML, `model` alone would be filed
        # under text/html, but errors are always JSON.
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorPublic"},
                "example": {"error": {"code": code, "message": message}},
            }
        },
    }


ERRORS: dict[int, dict[str, Any]] = {
    400: _error(
        "The request body is not valid JSON", "invalid_json", "the request body is not valid JSON"
    ),
    401: _error(
        "No bearer token, or one that is invalid or expired",
        "missing_token",
        "a bearer token is required",
    ),
    403: _error(
        "The token's user may not do this (not the author, not a moderator, banned)",
        "forbidden",
        "only the author may edit a comment",
    ),
    404: _error("The thread or comment does not exist", "not_found", "comment 'c_x' not found"),
    409: _error(
        "The request conflicts with the current state (e.g. the thread is locked)",
        "thread_locked",
        "the thread is locked",
    ),
    413: _error(
        "The request body is larger than the server accepts",
        "body_too_large",
        "the request body is too large",
    ),
    422: _error(
        "The request is well-formed JSON but not valid",
        "invalid_input",
        "body: String should have at least 1 character",
    ),
    429: _error(
        "Too many requests; retry after the `Retry-After` header's seconds",
        "rate_limited",
        "too many comments; retry in 30 seconds",
    ),
    503: _error(
        "The database or Redis is unavailable or busy; retry shortly",
        "database_unavailable",
        "the database cannot be reached; retry shortly",
    ),
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` mapping for these error statuses."""
    return {status: ERRORS[status] for status in statuses}


# What routers that need a bearer token and take a JSON body can answer with.
WRITE_ERRORS = errors(400, 401, 403, 404, 409, 413, 422, 429, 503)


_CACHING_HEADERS = {
    "ETag": {
        "description": "Names this answer: send it back in `If-None-Match` to be answered 304 "
        "while the thread has not changed",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`public, max-age=N, stale-while-revalidate=30` without a token; "
        "`private, ...` with one",
        "schema": {"type": "string"},
    },
    "Vary": {"description": "`Authorization, Origin`", "schema": {"type": "string"}},
}
# What a cacheable comment read (services/api/read_caching.py) declares besides its errors.
CACHED_READ: dict[int | str, dict[str, Any]] = {
    200: {"description": "Successful Response", "headers": _CACHING_HEADERS},
    304: {
        "description": "The copy `If-None-Match` names is current: no body",
        "headers": _CACHING_HEADERS,
        "content": {},
    },
}
