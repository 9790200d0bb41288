"""A newsroom's night of moderation, end to end through the API, on both databases.

Holds (a pre-moderated thread, `first_comments`, suspect words, a link limit, a person on
pre-moderation), refusals (a banned word, a reply to a held comment), reader flags reaching
the threshold, approve and reject, two moderators deciding at once, a suspension that ends
by itself, featured comments: at each step the page, the counts, the queues, the inboxes
and the emails are what a reader, an author and a moderator expect; at the end a rebuild
gives the live state back and `chorus verify` finds nothing.
"""

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine

from services.api.app import create_app
from services.worker.folding import fold_all, thread_projection
from services.worker.mailer import send_due_emails
from services.worker.notification_projector import notification_projection
from services.worker.rebuild import rebuild_notifications, rebuild_threads
from services.worker.verify import verify
from shared.notification_tables import email_outbox, notifications
from shared.projection_tables import LIVE
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.smtp_sink import Inbox
from tests.waiting import wait_for

THREADS = ("election", "sports", "open")
STAFF = {"mod": ["moderator"], "mod2": ["moderator"], "editor": ["admin"]}


class Newsroom:
    """Readers, authors and moderators acting through the API; folds like the worker."""

    def __init__(
        self, client: TestClient, auth: Auth, engine: Engine, store: EventStore, mail: Settings
    ) -> None:
        self.client, self.auth, self.engine, self.store, self.mail = (
            client,
            auth,
            engine,
            store,
            mail,
        )

    def as_(self, user: str) -> dict[str, str]:
        return self.auth(user, roles=STAFF.get(user), email=f"{user}@example.com")

    def call(self, method: str, url: str, user: str | None, **kwargs: Any) -> Response:
        headers = self.as_(user) if user else {}
        response: Response = self.client.request(method, url, headers=headers, **kwargs)
        return response

    def post(self, user: str, body: str, thread: str, parent: str | None = None) -> Response:
        payload = {"body": body, "parent_id": parent}
        return self.call("POST", f"/v1/threads/{thread}/comments", user, json=payload)

    def posted(self, user: str, body: str, thread: str, parent: str | None = None) -> str:
        response = self.post(user, body, thread, parent)
        assert response.status_code == 201, response.text
        comment_id: str = response.json()["id"]
        return comment_id

    def decide(self, action: str, comment_id: str, by: str = "mod", **body: Any) -> Response:
        return self.call("POST", f"/v1/comments/{comment_id}/{action}", by, json=body)

    def flag(self, comment_id: str, by: str, reason: str = "abuse") -> Response:
        payload = {"reason": reason}
        return self.call("POST", f"/v1/comments/{comment_id}/flags", by, json=payload)

    def fold(self, *threads: str) -> None:
        for thread in threads:
            fold_all(
                self.engine, self.store, thread, [thread_projection(), notification_projection()]
            )

    def page(self, thread: str, user: str | None = None, **params: Any) -> dict[str, Any]:
        response = self.call("GET", f"/v1/threads/{thread}/comments", user, params=params)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    def shown(self, thread: str, user: str | None = None) -> list[str]:
        """Ids on the page, replies included, in page order."""

        def walk(comments: list[dict[str, Any]]) -> Iterator[str]:
            for comment in comments:
                yield comment["id"]
                yield from walk(comment["replies"])

        return list(walk(self.page(thread, user)["comments"]))

    def count(self, thread: str) -> int:
        response = self.call("POST", "/v1/counts", None, json={"thread_ids": [thread]})
        count: int = response.json()["counts"][thread]
        return count

    def queue(self, name: str, thread: str | None = None) -> tuple[list[str], dict[str, int]]:
        params = {"queue": name, **({"thread_id": thread} if thread else {})}
        response = self.call("GET", "/v1/moderation/queue", "mod", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return [c["id"] for c in body["comments"]], body["counts"]

    def comment(self, comment_id: str, user: str | None) -> Response:
        """The comment as `user` reads it, once the worker has folded what was written."""
        self.fold(*THREADS)
        return self.call("GET", f"/v1/comments/{comment_id}", user)

    def inbox(self, user: str) -> dict[str, str]:
        response = self.call("GET", "/v1/me/notifications", user)
        return {n["comment_id"]: n["kind"] for n in response.json()["notifications"]}

    def emails_queued(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            query = sa.select(email_outbox.c.recipient_id, email_outbox.c.comment_id)
            return sorted((r.recipient_id, r.comment_id) for r in conn.execute(query))

    def send_mail(self) -> None:
        send_due_emails(self.engine, self.mail)

    def events(self) -> int:
        with self.engine.connect() as conn:
            count: int = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
            return count

    def snapshot(self) -> list[list[tuple[Any, ...]]]:
        tables = [LIVE.threads, LIVE.comments, LIVE.participants, notifications]
        with self.engine.connect() as conn:
            return [sorted(map(tuple, conn.execute(sa.select(t))), key=repr) for t in tables]


@pytest.fixture
def newsroom(
    settings: Settings, auth: Auth, engine: Engine, store: EventStore, inbox: Inbox
) -> Iterator[Newsroom]:
    mail = settings.model_copy(
        update={"smtp_url": inbox.smtp_url, "public_url": "http://chorus.test"}
    )
    with TestClient(create_app(mail)) as client:
        yield Newsroom(client, auth, engine, store, mail)


def refused(response: Response, status: int, code: str) -> bool:
    return response.status_code == status and response.json()["error"]["code"] == code


def test_a_night_in_the_newsroom(
    newsroom: Newsroom, inbox: Inbox, event_count: Callable[[], int]
) -> None:
    n = newsroom
    settings = {
        "mode": "post",
        "banned_words": ["slur"],
        "suspect_words": ["crypto", "straße"],
        "max_links": 2,
        "flag_threshold": 2,
    }
    assert n.call("PUT", "/v1/moderation/settings", "mod", json=settings).status_code == 403
    assert n.call("PUT", "/v1/moderation/settings", "editor", json=settings).status_code == 200
    assert n.call("GET", "/v1/moderation/settings", "mod").json() == settings
    for thread, mode in (("election", "pre"), ("sports", "first_comments"), ("open", None)):
        payload = {"title": thread.title(), "moderation": mode}
        assert n.call("PUT", f"/v1/threads/{thread}", "editor", json=payload).status_code == 200

    # A pre-moderated thread: the author sees their comment waiting, nobody else does.
    ann = n.posted("ann", "The turnout figures are in.", "election")
    n.fold("election")
    assert n.shown("election") == []
    assert n.count("election") == 0
    assert n.shown("election", "bob") == []
    mine = n.comment(ann, "ann").json()
    assert (mine["status"], mine["held_for"]) == ("pending", ["pre_moderation"])
    assert n.comment(ann, None).status_code == 404
    assert n.queue("pending") == ([ann], {"pending": 1, "reported": 0, "rejected": 0})
    assert refused(
        n.post("bob", "replying to nothing yet", "election", ann), 409, "parent_not_published"
    )

    assert n.decide("approve", ann).json()["status"] == "published"
    n.fold("election")
    assert n.shown("election") == [ann]
    assert n.count("election") == 1
    assert n.queue("pending")[1]["pending"] == 0

    # A held reply notifies nobody until it is approved; a rejected one never does.
    bob = n.posted("bob", "Which districts?", "election", ann)
    cat = n.posted("cat", "Rigged, all of it.", "election", ann)
    n.fold("election")
    assert n.inbox("ann") == {}
    assert n.emails_queued() == []
    assert n.queue("pending", "election")[0] == [bob, cat]
    assert n.decide("approve", bob).status_code == 200
    assert n.decide("reject", cat, reason="unfounded").json()["status"] == "rejected"
    n.fold("election")
    assert n.inbox("ann") == {bob: "reply"}
    assert n.emails_queued() == [("ann", bob)]
    n.send_mail()
    assert list(inbox.recipients) == [["ann@example.com"]]
    assert n.shown("election") == [ann, bob]
    assert n.count("election") == 2
    assert n.comment(cat, "cat").json()["status"] == "rejected"
    assert n.queue("rejected") == ([cat], {"pending": 0, "reported": 0, "rejected": 1})

    # Two moderators decide the same comment at once: one decision, one clear refusal.
    dan = n.posted("dan", "Polls close at eight.", "election")
    answers: list[Response] = []
    gate = threading.Barrier(2)

    def decide(by: str) -> None:
        gate.wait()
        answers.append(n.decide("approve", dan, by=by))

    racers = [threading.Thread(target=decide, args=(m,)) for m in ("mod", "mod2")]
    before = n.events()
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert n.events() == before + 1

    # first_comments: a newcomer waits once; after an approval they post freely.
    fay = n.posted("fay", "First time here.", "sports")
    assert n.comment(fay, "fay").json()["held_for"] == ["first_comment"]
    n.decide("approve", fay)
    assert n.comment(n.posted("fay", "Second time.", "sports"), "fay").json()["status"] == (
        "published"
    )

    # Words, whole and case-insensitive: no Scunthorpe problem; a banned word appends nothing.
    before = event_count()
    assert refused(n.post("gus", "what a SLUR that was", "open"), 422, "banned_word")
    assert event_count() == before
    assert n.comment(n.posted("gus", "slurp your soup", "open"), "gus").json()["status"] == (
        "published"
    )
    plain = n.posted("gus", "cryptography is old", "open")
    assert n.comment(plain, "gus").json()["status"] == "published"
    suspect = n.posted("gus", "Buy CRYPTO now", "open")
    assert n.comment(suspect, "gus").json()["held_for"] == ["suspect_word"]
    street = n.posted("gus", "Die HAUPTSTRASSE entlang", "open")
    assert n.comment(street, "gus").json()["status"] == "published"  # inside a longer word
    shouting = n.posted("gus", "Die STRASSE entlang", "open")
    assert n.comment(shouting, "gus").json()["held_for"] == ["suspect_word"]
    links = " ".join(f"https://example.com/{i}" for i in range(3))
    assert n.comment(n.posted("gus", links, "open"), "gus").json()["held_for"] == ["too_many_links"]

    # Flags reaching the threshold take a published comment off the page until a decision.
    hal = n.posted("hal", "A hot take.", "open")
    ivy = n.posted("ivy", "I disagree.", "open", hal)
    n.fold("open")
    count = n.count("open")
    assert n.flag(hal, "jon").json()["flag_count"] == 1
    assert n.flag(hal, "jon").json()["flag_count"] == 1  # one flag per reader
    n.fold("open")
    assert n.count("open") == count
    assert hal in n.shown("open")
    n.flag(hal, "kim", reason="spam")
    n.fold("open")
    assert n.count("open") == count - 1
    held = n.comment(hal, "hal").json()
    assert (held["status"], held["held_for"]) == ("pending", ["flags"])
    reported, counts = n.queue("reported", "open")
    assert reported == [hal]
    assert counts["reported"] == 1
    flagged = n.call("GET", "/v1/moderation/queue", "mod", params={"queue": "reported"})
    assert flagged.json()["comments"][0]["flags"] == {"abuse": 1, "spam": 1}
    assert "jon" not in flagged.text
    assert "kim" not in flagged.text
    assert n.decide("approve", hal).status_code == 200
    n.fold("open")
    assert n.count("open") == count
    assert n.queue("reported")[1]["reported"] == 0
    assert n.inbox("hal") == {ivy: "reply"}  # the reply notified once, before the flags

    # A person on pre-moderation, then off it.
    assert n.call("PUT", "/v1/users/leo/premod", "mod").json()["premod"] is True
    assert n.comment(n.posted("leo", "Hello", "open"), "leo").json()["held_for"] == ["user_premod"]
    n.call("DELETE", "/v1/users/leo/premod", "mod")
    assert n.comment(n.posted("leo", "Hello again", "open"), "leo").json()["status"] == (
        "published"
    )

    # A suspension ends by itself.
    until = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    assert n.call("PUT", "/v1/users/max/ban", "mod", json={"until": until}).status_code == 200
    assert refused(n.post("max", "let me in", "open"), 403, "banned")
    wait_for(
        lambda: n.post("max", "back again", "open").status_code == 201, "the suspension to end"
    )

    # Featured comments come first.
    assert n.call("PUT", f"/v1/comments/{plain}/feature", "mod").status_code == 200
    n.fold("open")
    first = n.page("open", sort="featured")["comments"][0]
    assert (first["id"], first["featured"]) == (plain, True)
    assert n.page("open", sort="oldest")["comments"][0]["featured"] is False

    # Staff carry the badge on what they post.
    staff = n.posted("mod", "Please keep it civil.", "open")
    n.fold("open")
    assert n.comment(staff, None).json()["author"]["badges"] == ["staff"]

    # The audit log, newest first, straight from the events.
    entries = n.call("GET", "/v1/moderation/log", "mod").json()["entries"]
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["feature", "ban", "unpremod"]
    assert {"approve", "reject", "premod", "settings", "thread_moderation"} <= set(actions)
    reject = next(e for e in entries if e["action"] == "reject")
    assert reject["reason"] == "unfounded"
    assert reject["moderator"]["id"] == "mod"

    # Rebuilt from the log, every projection is what it was; verify finds nothing.
    n.fold("election", "sports", "open")
    live = n.snapshot()
    rebuild_threads(n.engine, n.store)
    rebuild_notifications(n.engine, n.store)
    assert n.snapshot() == live
    assert verify(n.engine).ok
