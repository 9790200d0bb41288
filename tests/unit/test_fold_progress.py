"""Fold announcements: what the worker publishes is what the API reads back, and anything
else on the channel is ignored, never fatal."""

import pytest

from shared.fold_progress import MAX_NOTIFIED, FoldProgress, UnreadChanged, channel, decode


def test_an_announcement_reads_back_as_sent() -> None:
    sent = FoldProgress("news.example:2026-11", 42)
    assert FoldProgress.decode(sent.encode().encode()) == sent
    assert FoldProgress.decode(sent.encode()) == sent


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[]",
        b'{"thread_id": "t"}',
        b'{"thread_id": 1, "version": 2}',
        b'{"thread_id": "t", "version": "2"}',
        b'{"thread_id": "t", "version": true}',
    ],
)
def test_anything_else_is_ignored(payload: bytes) -> None:
    assert FoldProgress.decode(payload) is None


def test_each_redis_database_has_its_own_channel() -> None:
    assert channel(0) != channel(3)


def test_an_announcement_names_the_users_it_notified_or_says_there_were_many() -> None:
    named = FoldProgress("t", 3, ("u1", "u2"))
    many = FoldProgress("t", 3, tuple(f"u{i}" for i in range(MAX_NOTIFIED + 1)))
    assert decode(named.encode()) == named
    assert decode(many.encode()) == FoldProgress("t", 3, None)
    assert decode(b'{"thread_id": "t", "version": 3, "notified": [1]}') == FoldProgress("t", 3)


def test_a_mark_read_announcement_reads_back_as_sent() -> None:
    sent = UnreadChanged(("u1",))
    assert decode(sent.encode()) == sent
    assert FoldProgress.decode(sent.encode()) is None
    assert decode(b'{"unread_changed": "u1"}') is None
