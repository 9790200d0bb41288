"""Replay records decode across releases (decision 17)."""

import pytest

from shared import replays
from shared.commands import LikeComment, PostComment
from shared.results import RESULT_TYPES, NewComment


def test_records_decode_across_releases() -> None:
    command = PostComment("t1", "hi")
    fields = {"id": "c1", "thread_id": "t1", "parent_id": None, "version": 2, "position": 9}
    expected = NewComment(**fields)

    assert replays.decode(replays.encode(expected), command) == expected
    assert replays.decode(fields, command) == expected  # before records were versioned
    # A later release that stored a field this one does not know yet.
    later = {"v": 1, "kind": "NewComment", "data": {**fields, "moderation": "pending"}}
    assert replays.decode(later, command) == expected
    with pytest.raises(replays.UnreadableReplay):
        replays.decode({"v": 99, "kind": "NewComment", "data": fields}, command)
    with pytest.raises(replays.UnreadableReplay):  # stored for another kind of command
        replays.decode(replays.encode(expected), LikeComment("c1"))


def test_every_command_declares_a_result_type_with_a_decoder() -> None:
    from typing import get_args

    from shared.commands import Command

    for command_type in get_args(Command):
        kind = replays.answer_type(command_type)
        assert kind in RESULT_TYPES
        assert (replays.VERSION, kind.__name__) in replays.DECODERS
