import pytest
from pydantic import ValidationError

from shared import upcasting
from shared.events import CommentDeleted, CommentPosted
from shared.ids import new_id
from shared.store import NewEvent


def test_ids_are_opaque_url_safe_and_time_ordered() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 26 and i.isalnum() and i.islower() for i in ids)
    first, later = ids[0], new_id()
    assert first[:10] <= later[:10]  # the millisecond prefix never goes back


def test_events_are_frozen_and_strict() -> None:
    event = CommentDeleted(comment_id="c", deleted_by="u")
    with pytest.raises(ValidationError):
        CommentDeleted(comment_id="c", deleted_by="u", surprise=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        event.comment_id = "other"  # type: ignore[misc]


def test_a_new_event_records_type_version_and_json_data() -> None:
    posted = CommentPosted.model_validate(
        {"comment_id": "c", "parent_id": None, "author": {"id": "u", "name": "U"}, "body": "b"}
    )
    new = NewEvent.of(posted, {"request_id": "r"})
    assert (new.type, new.schema_version) == ("CommentPosted", 1)
    assert new.data["author"] == {"id": "u", "name": "U"}
    assert new.metadata == {"request_id": "r"}


def test_old_events_are_upcast_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema change adds an upcaster; events stored at v1 still read as the current model."""
    monkeypatch.setattr(CommentDeleted, "schema_version", 2)
    monkeypatch.setitem(
        upcasting.UPCASTERS,
        ("CommentDeleted", 1),
        lambda data: {
            **{k: v for k, v in data.items() if k != "moderated"},
            "by_moderator": data["moderated"],
        },
    )
    stored_v1 = {"comment_id": "c", "deleted_by": "m", "moderated": True}

    event = upcasting.to_domain("CommentDeleted", 1, stored_v1)

    assert event == CommentDeleted(comment_id="c", deleted_by="m", by_moderator=True)
