"""Posting under the site's moderation: settings, thread modes, statuses decided at post."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from shared.command_bus import CommandBus
from shared.commands import Actor, ChangeModerationSettings, PostComment, RequestContext
from shared.results import ModerationSettings, NewComment
from shared.store import EventStore
from shared.streams import SITE_MODERATION_STREAM
from tests.integration.conftest import Auth
from tests.integration.moderation_site import Site, refused
from tests.statements import count_statements


@pytest.fixture
def site(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Site:
    return Site(client, auth, engine, store)


DEFAULTS = {
    "mode": "post",
    "banned_words": [],
    "suspect_words": [],
    "max_links": None,
    "flag_threshold": 3,
}


def test_settings_are_the_defaults_until_an_admin_changes_them(site: Site) -> None:
    assert site.call("GET", "/v1/moderation/settings", "mod").json() == DEFAULTS

    changed = site.settings(mode="first_comments", suspect_words=["casino"], max_links=2)

    assert changed.json() == {
        **DEFAULTS,
        "mode": "first_comments",
        "suspect_words": ["casino"],
        "max_links": 2,
    }
    assert site.call("GET", "/v1/moderation/settings", "admin").json() == changed.json()
    [event] = site.store.read_stream(SITE_MODERATION_STREAM)
    assert (event.type, event.metadata["actor"]["id"]) == ("ModerationSettingsChanged", "admin")
    assert event.data == changed.json()


def test_a_put_replaces_the_fields_it_gives_and_keeps_the_others(site: Site) -> None:
    site.settings(banned_words=["slur"], max_links=2, flag_threshold=5)

    kept = site.settings(max_links=None, suspect_words=[" Casino ", "CASINO", "Straße"]).json()

    assert kept == {
        **DEFAULTS,
        "banned_words": ["slur"],
        "suspect_words": ["Casino", "Straße"],
        "max_links": None,
        "flag_threshold": 5,
    }


def test_only_admins_change_settings_and_only_moderators_read_them(
    site: Site, event_count: Callable[[], int]
) -> None:
    assert refused(site.settings(by="mod", mode="pre"), 403, "forbidden")
    assert refused(site.settings(by="ann", mode="pre"), 403, "forbidden")
    assert refused(site.call("GET", "/v1/moderation/settings", "ann"), 403, "forbidden")
    assert site.client.get("/v1/moderation/settings").status_code == 401
    assert event_count() == 0


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"mode": "lenient"}, "invalid_input"),
        ({"max_links": -1}, "invalid_settings"),
        ({"flag_threshold": 0}, "invalid_settings"),
        ({"banned_words": [""]}, "invalid_settings"),
        ({"banned_words": ["x" * 65]}, "invalid_settings"),
        ({"suspect_words": ["tab\there"]}, "invalid_settings"),
        ({"suspect_words": ["nul\x00"]}, "invalid_characters"),
        ({"suspect_words": [f"w{n}" for n in range(1001)]}, "invalid_settings"),
        ({"banned_words": "slur"}, "invalid_input"),
    ],
)
def test_bad_settings_are_refused_and_append_nothing(
    site: Site, event_count: Callable[[], int], fields: dict[str, Any], code: str
) -> None:
    assert refused(site.settings(**fields), 422, code)
    assert event_count() == 0


def test_the_same_settings_again_append_nothing(site: Site, event_count: Callable[[], int]) -> None:
    site.settings(mode="pre")
    before = event_count()
    assert site.settings(mode="pre").json()["mode"] == "pre"
    assert site.settings().json()["mode"] == "pre"
    assert event_count() == before


def test_settings_apply_to_the_next_comment_without_a_restart(
    site: Site, event_count: Callable[[], int]
) -> None:
    assert site.posted("ann", "visit the casino")["status"] == "published"

    site.settings(suspect_words=["casino"], banned_words=["slur"], max_links=1)

    held = site.posted("ann", "visit the CASINO at https://a.example and https://b.example")
    assert (held["status"], held["held_for"]) == ("pending", ["suspect_word", "too_many_links"])
    posted = site.store.read_stream("t1")[-1]
    assert (posted.data["status"], posted.data["held_for"]) == held_status(held)
    assert site.status(held["id"]) == "pending"

    before = event_count()
    word = site.post("ann", "you SLUR")
    assert refused(word, 422, "banned_word")
    assert "slur" in word.json()["error"]["message"]
    assert refused(site.post("mod", "slur"), 422, "banned_word")  # staff too
    assert event_count() == before


def held_status(created: dict[str, Any]) -> tuple[str, list[str]]:
    return created["status"], created["held_for"]


def test_words_match_whole_so_a_place_name_is_no_insult(site: Site) -> None:
    site.settings(banned_words=["cunt"], suspect_words=["ass"])
    assert site.posted("ann", "Greetings from Scunthorpe, a classy town")["status"] == "published"
    assert site.posted("ann", "what an ass.")["held_for"] == ["suspect_word"]


def test_the_threads_mode_overrides_the_sites_until_set_back_to_null(
    site: Site, store: EventStore
) -> None:
    site.posted("ann")
    pre = site.call("PUT", "/v1/threads/t1", "admin", {"moderation": "pre"}).json()
    assert pre["moderation"] == "pre"
    assert site.posted("ann")["held_for"] == ["pre_moderation"]
    assert site.post("bob", thread="t2").json()["status"] == "published"  # that thread only

    # Changing something else keeps the mode; the same mode appends nothing.
    retitled = site.call("PUT", "/v1/threads/t1", "admin", {"title": "T"}).json()
    assert retitled["moderation"] == "pre"
    version = retitled["version"]
    same = site.call("PUT", "/v1/threads/t1", "admin", {"moderation": "pre"}).json()
    assert same["version"] == version

    back = site.call("PUT", "/v1/threads/t1", "admin", {"moderation": None}).json()
    assert back["moderation"] is None
    assert site.posted("ann")["status"] == "published"
    changes = [e.data for e in store.read_stream("t1") if e.type == "ThreadModerationChanged"]
    assert changes == [{"mode": "pre"}, {"mode": None}]

    assert refused(
        site.call("PUT", "/v1/threads/t1", "admin", {"moderation": "strict"}), 422, "invalid_input"
    )
    assert refused(
        site.call("PUT", "/v1/threads/t1", "mod", {"moderation": "pre"}), 403, "forbidden"
    )


def test_first_comments_wait_until_one_is_approved(site: Site) -> None:
    site.settings(mode="first_comments")
    first = site.posted("ann")
    assert first["held_for"] == ["first_comment"]
    assert site.posted("ann")["status"] == "pending"  # still nobody approved one

    assert site.decide(first["id"], "approve").status_code == 200

    assert site.posted("ann")["status"] == "published"
    assert site.posted("bob")["held_for"] == ["first_comment"]


def test_staff_carry_a_badge_and_are_never_held(site: Site, store: EventStore) -> None:
    site.settings(mode="pre", suspect_words=["casino"])
    for user in ("mod", "admin", "editor"):
        assert site.posted(user, "casino")["status"] == "published"
    assert site.posted("ann")["status"] == "pending"

    badges = [
        (e.data["author"]["id"], e.data["badges"])
        for e in store.read_stream("t1")
        if e.type == "CommentPosted"
    ]
    assert badges == [("mod", ["staff"]), ("admin", ["staff"]), ("editor", ["staff"]), ("ann", [])]


def test_a_reply_to_a_comment_not_published_is_refused(
    site: Site, event_count: Callable[[], int]
) -> None:
    site.settings(mode="pre")
    held = site.posted("ann")["id"]
    before = event_count()
    assert refused(site.post("bob", parent=held), 409, "parent_not_published")
    assert refused(site.post("mod", parent=held), 409, "parent_not_published")
    assert event_count() == before

    site.decide(held, "approve")
    assert site.post("bob", parent=held).status_code == 201
    site.decide(held, "reject")
    assert refused(site.post("bob", parent=held), 409, "parent_not_published")


def test_an_edit_is_checked_again(site: Site, event_count: Callable[[], int]) -> None:
    comment = site.posted("ann", "a clean comment")["id"]
    site.settings(banned_words=["slur"], suspect_words=["casino"])
    url = f"/v1/comments/{comment}"

    before = event_count()
    assert refused(site.call("PATCH", url, "ann", {"body": "slur"}), 422, "banned_word")
    assert event_count() == before

    assert site.call("PATCH", url, "ann", {"body": "try the casino"}).status_code == 200
    edited, held = site.store.read_stream("t1")[-2:]
    assert (edited.type, held.type, held.data["held_for"]) == (
        "CommentEdited",
        "CommentHeld",
        ["suspect_word"],
    )
    assert site.status(comment) == "pending"

    # Already pending: an edit holds it no further.
    site.call("PATCH", url, "ann", {"body": "the casino again"})
    assert site.types()[-1] == "CommentEdited"


def test_a_user_on_pre_moderation_is_held_until_taken_off(
    site: Site, event_count: Callable[[], int]
) -> None:
    assert refused(site.call("PUT", "/v1/users/ann/premod", "bob"), 403, "forbidden")
    assert site.call("PUT", "/v1/users/ann/premod", "mod").json() == {
        "user_id": "ann",
        "premod": True,
    }
    before = event_count()
    assert site.call("PUT", "/v1/users/ann/premod", "admin").json()["premod"] is True
    assert event_count() == before  # twice is once

    assert site.posted("ann")["held_for"] == ["user_premod"]
    assert site.posted("bob")["status"] == "published"

    assert site.call("DELETE", "/v1/users/ann/premod", "mod").json()["premod"] is False
    assert site.posted("ann")["status"] == "published"
    assert [e.type for e in site.store.read_stream("~user:ann")] == [
        "UserPremodChanged",
        "UserPremodChanged",
    ]


def test_settings_are_read_once_per_batch_and_a_change_in_it_applies_at_once(
    client: TestClient,
) -> None:
    """Posts sharing one group commit read the settings once; a settings change among them
    applies to the posts after it in the same batch."""
    services = client.app.state.services  # type: ignore[attr-defined]
    bus = services.bus
    ann = RequestContext(Actor("ann", "Ann"))
    admin = RequestContext(Actor("root", "Root", roles=frozenset({"admin"})))
    started, release = threading.Event(), threading.Event()
    hold = lambda _conn: (started.set(), release.wait(60), [])[1:]  # noqa: E731
    blocker = bus.committer.submit(hold, tag=ann)
    assert started.wait(60)

    def submit(command: Any, ctx: RequestContext) -> Any:
        # What the bus's own work answers: the result, and the events (not needed here).
        work = lambda conn: (bus.handlers.handle(conn, command, ctx), [])  # noqa: E731
        return bus.committer.submit(work, tag=ctx)

    futures = [submit(PostComment("t1", f"casino {n}"), ann) for n in range(5)]
    change = ChangeModerationSettings(given=("suspect_words",), suspect_words=("casino",))
    futures.append(submit(change, admin))
    futures += [submit(PostComment("t1", f"casino {n}"), ann) for n in range(5)]
    with count_statements(services.engine) as statements:
        release.set()
        blocker.result(60)
        results = [f.result(60)[0] for f in futures]

    settings_reads = [s for s in statements.seen if "moderation_settings" in s]
    assert len(settings_reads) == 1
    assert isinstance(results[5], ModerationSettings)
    posts = [r for r in results if isinstance(r, NewComment)]
    assert [p.status for p in posts] == ["published"] * 5 + ["pending"] * 5
    assert bus.committer.batches >= 2


def test_a_reply_reads_all_it_checks_in_one_statement(engine: Engine, store: EventStore) -> None:
    """The author's standing, the thread and the parent: one read under the append lock
    (`shared.posting_facts`), besides the lock itself and the batch's settings."""
    bus = CommandBus(engine, store)
    try:
        top = bus.execute(PostComment("t1", "First"), RequestContext(Actor("ann", "Ann")))
        with count_statements(engine) as statements:
            reply = bus.execute(
                PostComment("t1", "A reply", top.id), RequestContext(Actor("bob", "Bob"))
            )
    finally:
        bus.close()

    # Besides the lock, the batch's settings and the append (a WITH ... INSERT on PostgreSQL).
    checks = [
        s
        for s in statements.seen
        if not any(part in s for part in ("pg_advisory_xact_lock", "moderation_settings", "INSERT"))
    ]
    assert len(checks) == 1
    assert (reply.parent_id, reply.status) == (top.id, "published")
