"""Log lines are JSON objects that carry the request id of the work they belong to."""

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from shared.logging_setup import JsonFormatter, configure_logging
from shared.request_context import bound_request_id, request_id_var


def record(message: str, *args: object, **extra: Any) -> logging.LogRecord:
    return logging.getLogger("chorus.test").makeRecord(
        "chorus.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )


def test_a_line_is_a_json_object_with_the_request_id_of_its_context() -> None:
    with bound_request_id("req-42"):
        line = JsonFormatter().format(record("thread %s is %d behind", "t1", 3))

    entry = json.loads(line)
    assert entry["message"] == "thread t1 is 3 behind"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "chorus.test"
    assert entry["request_id"] == "req-42"
    assert entry["time"].endswith("Z")
    assert request_id_var.get() is None  # the block restored the previous value


def test_extras_are_fields_and_a_line_without_a_request_has_no_request_id() -> None:
    entry = json.loads(JsonFormatter().format(record("folded", thread_id="t1", applied=2)))

    assert entry["thread_id"] == "t1"
    assert entry["applied"] == 2
    assert "request_id" not in entry


def test_a_traceback_and_a_multiline_message_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("first line\nsecond line")
        failed.exc_info = sys.exc_info()

    line = JsonFormatter().format(failed)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "first line\nsecond line"
    assert "ValueError: boom" in entry["exception"]


@pytest.fixture
def restored_logging() -> Iterator[None]:
    loggers = [logging.getLogger(), *map(logging.getLogger, ("uvicorn", "uvicorn.error"))]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.usefixtures("restored_logging")
def test_configured_logging_writes_every_logger_once_as_json_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(sys.stdout))
    configure_logging(logging.INFO)
    configure_logging(logging.INFO)  # again, as a second app in one process would

    with bound_request_id("req-7"):
        logging.getLogger("services.worker.jobs").info("folded %s", "t1")
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("services.worker.jobs").debug("not at INFO")

    out, err = capsys.readouterr()
    assert out == ""
    entries = [json.loads(line) for line in err.splitlines()]
    assert [(e["logger"], e["message"], e.get("request_id")) for e in entries] == [
        ("services.worker.jobs", "folded t1", "req-7"),
        ("uvicorn.error", "Started server process", None),
    ]
