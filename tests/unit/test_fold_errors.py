"""Which fold errors may dead-letter an event: the event's own, never the database's."""

import sqlite3

import psycopg
import pydantic
import pytest
import sqlalchemy as sa
from rq.timeouts import JobTimeoutException

from services.worker.fold_errors import is_event_error
from services.worker.tree_session import MissingRow
from shared.events import CommentPosted


def wrapped(orig: Exception, *, invalidated: bool = False) -> BaseException:
    """The exception SQLAlchemy raises when the driver raises `orig` during a statement."""
    dbapi_base = psycopg.Error if isinstance(orig, psycopg.Error) else sqlite3.Error
    return sa.exc.DBAPIError.instance(
        "UPDATE comment_view SET like_count = ?",
        {},
        orig,
        dbapi_base,
        connection_invalidated=invalidated,
    )


def validation_error() -> pydantic.ValidationError:
    try:
        CommentPosted.model_validate({"comment_id": 3})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("expected a validation error")


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.InFailedSqlTransaction("current transaction is aborted"),
        psycopg.errors.UndefinedTable('relation "comment_view" does not exist'),
        psycopg.InterfaceError("the connection is closed"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("disk I/O error"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_database_errors_never_dead_letter(error: Exception) -> None:
    assert not is_event_error(wrapped(error))


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.StringDataRightTruncation("value too long for type character varying(40)"),
        psycopg.errors.UniqueViolation("duplicate key value violates unique constraint"),
        sqlite3.IntegrityError("UNIQUE constraint failed: notification_comments.comment_id"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_statement_errors_the_events_values_cause_dead_letter(error: Exception) -> None:
    assert is_event_error(wrapped(error))


def test_any_error_on_a_dropped_connection_is_the_databases() -> None:
    lost = psycopg.errors.UniqueViolation("server closed the connection unexpectedly")
    assert not is_event_error(wrapped(lost, invalidated=True))


@pytest.mark.parametrize(
    "error",
    [
        sa.exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back"),
        sa.exc.ResourceClosedError("This Connection is closed"),
        sa.exc.TimeoutError("QueuePool limit reached"),
        JobTimeoutException("Task exceeded maximum timeout value (180 seconds)"),
        MemoryError(),
        ConnectionResetError("connection reset by peer"),
        sa.exc.StatementError("bind failed", "SELECT 1", {}, JobTimeoutException("timeout")),
        # A deployment without a dependency (seen: linkify-it-py) fails every event alike.
        ModuleNotFoundError("Linkify enabled but not installed."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_environment_never_dead_letters(error: Exception) -> None:
    assert not is_event_error(error)


@pytest.mark.parametrize(
    "error",
    [
        MissingRow("comment 'x' is not in thread 't1'"),
        LookupError("parent comment 'x' is unknown to the notification fold"),
        KeyError("Unlikeable"),
        ValueError("comment 'x' is already projected"),
        AssertionError(),
        validation_error(),
        sa.exc.StatementError("bind failed", "SELECT 1", {}, TypeError("not a datetime")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_projector_code_on_the_events_data_dead_letter(error: Exception) -> None:
    assert is_event_error(error)
