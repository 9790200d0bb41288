"""Fold announcements: what the worker publishes is what the API reads back, and anything
else on the channel is ignored, never fatal."""

import pytest

from shared.fold_progress import FoldProgress, channel


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
