"""Which errors of a fold are the event's own, and which are the database's.

Only an event's own error may dead-letter it: the same event fails the same way on every
attempt, so retrying would stall its thread forever. Anything else (a deadlock, a lock or
statement timeout, a dropped connection, a job that ran out of time) says nothing about
the event: dead-lettering it would skip a valid event and move the checkpoint past it,
and the projection would silently diverge from the log. Those errors fail the fold
instead; its transaction rolls back with the checkpoint, and the next nudge or sweep
folds the thread again.

The event's own errors:
- anything projector code raises on the event's data (a missing parent, a bad field:
  `LookupError`, `ValueError`, `AssertionError`, ...), including upcasting and validation
  (`pydantic.ValidationError`);
- a statement the event's values make fail every time: integrity errors (a duplicate id)
  and data errors (a value too long for its column, a NUL byte on PostgreSQL), and values
  that cannot be bound at all.

The database's (re-raised): every other DBAPI error, whatever its class -- operational
(deadlocks, serialization failures, canceled queries, lock timeouts, shutdowns, a locked
SQLite file), interface, internal, programming (a missing table is a deployment fault,
not the event's) and not-supported errors -- and any error whose connection was
invalidated; SQLAlchemy's own connection, pool and transaction state errors; RQ's job
timeout, `MemoryError` and `OSError`; and `ImportError`: code the worker cannot load (a
dependency missing from a deployment, such as markdown-it's linkify) fails every event
alike, and once it is installed they all fold.
"""

import sqlite3

import psycopg
import sqlalchemy as sa
from rq.timeouts import JobTimeoutException

# Statement errors the same values cause again on every attempt.
_DATA_ERRORS = (sa.exc.IntegrityError, sa.exc.DataError)
_DRIVER_DATA_ERRORS = (
    psycopg.IntegrityError,
    psycopg.DataError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
)
_DRIVER_ERRORS = (psycopg.Error, sqlite3.Error)
_ENVIRONMENT_ERRORS = (JobTimeoutException, MemoryError, OSError, ImportError)


def is_event_error(exc: BaseException) -> bool:
    """True if `exc` is the event's own fault, so dead-lettering the event is right."""
    if getattr(exc, "connection_invalidated", False):
        return False
    if isinstance(exc, sa.exc.DBAPIError):
        return isinstance(exc, _DATA_ERRORS)
    if isinstance(exc, sa.exc.StatementError):
        # Raised before the statement reached the database, e.g. a value that could not
        # be bound; judge by what was raised there (a job timeout can land here too).
        return exc.orig is None or is_event_error(exc.orig)
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return False  # the connection, the pool or the transaction, never the event
    if isinstance(exc, _DRIVER_ERRORS):
        return isinstance(exc, _DRIVER_DATA_ERRORS)
    return not isinstance(exc, _ENVIRONMENT_ERRORS)
