"""Every error leaves as `{"error": {"code", "message"}}` with a fitting status."""

import logging
from collections.abc import Mapping

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.api.inputs import INVALID_CHARACTERS
from shared import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.ChorusError], int] = {
    errors.InvalidInput: 422,
    errors.IdempotencyKeyReused: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.ConcurrencyError: 409,
    errors.Busy: 503,
    errors.StoreUnavailable: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error answer, which no cache keeps: a 404 for a thread about to get its first
    comment, or a 503 of a passing moment, must not be served again from a CDN."""
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


async def _chorus_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ChorusError)
    status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="chorus"'
    if status == 503:
        headers["Retry-After"] = "1"
    return error_response(status, exc.code, exc.message, headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    described = "; ".join(
        f"{'.'.join(str(part) for part in p.get('loc', ()))}: {p.get('msg', 'invalid')}"
        for p in problems[:5]
    )
    unsafe = any(p.get("type") == INVALID_CHARACTERS for p in problems)
    code = INVALID_CHARACTERS if unsafe else "invalid_input"
    return error_response(422, code, described or "the request is not valid")


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", exc)
    return error_response(
        503,
        "database_unavailable",
        "the database cannot be reached; retry shortly",
        {"Retry-After": "2"},
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "something went wrong on our side")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ChorusError, _chorus_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sa.exc.OperationalError, _database_error)
    app.add_exception_handler(sa.exc.InterfaceError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
