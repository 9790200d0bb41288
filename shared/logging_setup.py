"""Structured logs: one JSON object per line on stderr, for the API and the worker alike.

Each line has `time` (ISO 8601, UTC), `level`, `logger`, `message`, `request_id` when one
is known (the API request being served, or the request that queued the worker's job),
whatever the call passed as `extra=`, and `exception` with the traceback if there is one.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from shared.request_context import request_id_var

# Attributes every LogRecord has: anything else on a record came from `extra=`.
# uvicorn adds `color_message` (the message with ANSI colours) to some of its records.
_NOT_EXTRAS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# uvicorn configures its own loggers before it loads the app: route them through ours.
# A logger uvicorn switched off (the access log, with `access_log=False`) stays off.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = record.__dict__.get("request_id") or request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRAS and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is when a record comes (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: int | str = logging.INFO) -> None:
    """Send every log record, uvicorn's and RQ's included, to stderr as JSON lines.

    Idempotent: calling it again replaces the handler it installed, and leaves other
    handlers on the root logger (a test runner's) alone.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if logger.handlers:
            logger.handlers.clear()
            logger.propagate = True
