"""The merge that compares a table's rows with the rows the log gives, both in key order."""

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from services.worker.table_diff import Difference, TableCheck, diff_rows

LIKES = sa.Table(
    "likes",
    sa.MetaData(),
    sa.Column("comment_id", sa.String, primary_key=True),
    sa.Column("user_id", sa.String, primary_key=True),
    sa.Column("count", sa.Integer),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
CHECK = TableCheck(LIKES, ("comment_id", "user_id"), ignore=("updated_at",))
NOON = datetime(2026, 11, 29, 12, tzinfo=UTC)


def test_missing_extra_and_different_rows_are_found_in_one_pass() -> None:
    found = [
        ("a", "ann", 1, NOON),
        ("a", "bob", 2, NOON),  # extra
        ("b", "ann", 3, NOON),  # count differs
        ("c", "zed", 1, NOON),  # extra, after the last expected row
    ]
    expected = [
        ("a", "ann", 1, NOON),
        ("a", "cat", 1, NOON),  # missing, between two found rows
        ("b", "ann", 4, NOON),
        ("b", "bob", 1, NOON),  # missing
    ]

    assert list(diff_rows(CHECK, found, expected)) == [
        Difference("likes", "comment_id=a, user_id=bob", "extra"),
        Difference("likes", "comment_id=a, user_id=cat", "missing"),
        Difference("likes", "comment_id=b, user_id=ann", "different", "count", "3", "4"),
        Difference("likes", "comment_id=b, user_id=bob", "missing"),
        Difference("likes", "comment_id=c, user_id=zed", "extra"),
    ]


def test_the_same_moment_in_another_form_is_no_difference() -> None:
    naive_utc = NOON.replace(tzinfo=None)  # how SQLite hands it back
    in_paris = NOON.astimezone(timezone(timedelta(hours=1)))  # PostgreSQL, in its zone
    found = [("a", "ann", 1, naive_utc), ("b", "ann", 1, in_paris)]
    expected = [("a", "ann", 1, NOON), ("b", "ann", 1, NOON + timedelta(microseconds=1))]

    (difference,) = diff_rows(CHECK, found, expected)

    assert (difference.key, difference.column) == ("comment_id=b, user_id=ann", "at")


def test_ignored_columns_are_not_read() -> None:
    assert CHECK.columns == ["count", "at"]


def test_empty_sides() -> None:
    assert list(diff_rows(CHECK, [], [])) == []
    assert [d.problem for d in diff_rows(CHECK, [], [("a", "ann", 1, NOON)])] == ["missing"]
