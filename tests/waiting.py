"""Waiting in tests: for a condition, never for a fixed time.

A deadline only bounds how long a test waits for something that must happen; passing tests
never reach it, so it is generous (a loaded two-core machine runs six suites at once). A test
that asserts that something did *not* happen first waits for a positive sign that it would
have by then (a later marker processed, a checkpoint passed), then asserts the absence.
"""

import time
from collections.abc import Callable

import pytest

# How long a test waits for something that must happen before it calls it a failure.
PATIENCE_SECONDS = 120.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = PATIENCE_SECONDS) -> None:
    """Return as soon as `condition()` is true; fail the test, naming `what`, at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
