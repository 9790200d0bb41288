"""The mailer against a real SMTP server (aiosmtpd, in-process) on both databases.

Outbox, notification, people and thread rows are inserted directly: they are the input
contract the notification fold writes.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue
from sqlalchemy.engine import Engine

from services.api.app import create_app
from services.worker import context, jobs, mailer
from services.worker.email_messages import notification_message_id
from shared.notification_tables import email_outbox, notifications, people, user_preferences
from shared.nudges import FOLD_QUEUE, MAIL_JOB, MAIL_PENDING_KEY, enqueue_mail_if_due, nudge_mail
from shared.projection_tables import LIVE
from shared.settings import Settings
from shared.unsubscribe import make_token
from tests.integration.conftest import JWT_SECRET
from tests.smtp_sink import Inbox, free_port, serve

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PUBLIC_URL = "http://chorus.test:8000"
TITLE = "South Korea and the POWs"
POST_URL = "https://news.example/p/south-korea"


@pytest.fixture
def mail_settings(settings: Settings, inbox: Inbox) -> Settings:
    return settings.model_copy(
        update={
            "smtp_url": inbox.smtp_url,
            "public_url": PUBLIC_URL,
            "mail_from": "Chorus <comments@chorus.test>",
        }
    )


@pytest.fixture
def mail_client(mail_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(mail_settings)) as client:
        yield client


class Fixtures:
    """Writes the rows the notification fold would have written."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.position = 0

    def thread(
        self, thread_id: str = "t1", title: str | None = TITLE, url: str | None = POST_URL
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                LIVE.threads.insert().values(
                    thread_id=thread_id, title=title, url=url, created_at=NOW
                )
            )

    def person(self, user_id: str, name: str, email: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                people.insert().values(user_id=user_id, name=name, email=email, updated_at=NOW)
            )

    def notify(
        self,
        recipient: str,
        comment_id: str,
        *,
        kind: str = "reply",
        thread_id: str = "t1",
        actor: str = "Don",
        excerpt: str = "I was there in 1953.",
        frequency: str = "immediate",
        at: datetime = NOW,
    ) -> None:
        due = {
            "immediate": at,
            "hourly": at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1),
            "daily": at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1),
        }[frequency]
        self.position += 1
        with self.engine.begin() as conn:
            conn.execute(
                notifications.insert().values(
                    recipient_id=recipient,
                    comment_id=comment_id,
                    kind=kind,
                    thread_id=thread_id,
                    actor_id=actor.lower(),
                    actor_name=actor,
                    excerpt=excerpt,
                    position=self.position,
                    created_at=at,
                )
            )
            conn.execute(
                email_outbox.insert().values(
                    recipient_id=recipient,
                    comment_id=comment_id,
                    frequency=frequency,
                    status="pending",
                    due_at=due,
                    attempts=0,
                    created_at=at,
                )
            )


@pytest.fixture
def rows(engine: Engine) -> Fixtures:
    fixtures = Fixtures(engine)
    fixtures.thread()
    fixtures.person("ann", "Ann Lee", "ann@example.com")
    fixtures.person("bob", "Bob", "bob@example.com")
    return fixtures


def outbox(engine: Engine) -> dict[str, dict[str, Any]]:
    """Outbox rows by comment id (tests use one recipient per comment unless they say)."""
    with engine.connect() as conn:
        found = conn.execute(sa.select(email_outbox).order_by(email_outbox.c.id))
        return {f"{r.recipient_id}/{r.comment_id}": dict(r._mapping) for r in found}


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def send(engine: Engine, settings: Settings, now: datetime = NOW) -> mailer.MailSummary:
    return mailer.send_due_emails(engine, settings, now=now)


def test_each_immediate_row_goes_out_as_one_email_with_unsubscribe_headers(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    rows.notify("ann", "c1", kind="reply", excerpt="I was there in 1953.")
    rows.notify("bob", "c1", kind="conversation", excerpt="I was there in 1953.")

    summary = send(engine, mail_settings)

    assert (summary.emails_sent, summary.rows_sent) == (2, 2)
    by_to = {str(m["To"]): m for m in inbox.messages}
    assert set(by_to) == {"Ann Lee <ann@example.com>", "Bob <bob@example.com>"}
    ann = by_to["Ann Lee <ann@example.com>"]
    assert ann["Subject"] == f'Don replied to your comment on "{TITLE}"'
    assert by_to["Bob <bob@example.com>"]["Subject"] == (
        f'Don also commented in a conversation on "{TITLE}"'
    )
    assert ann["From"] == "Chorus <comments@chorus.test>"
    assert ann["Message-ID"] == notification_message_id("ann", "c1", "chorus.test")
    unsubscribe = f"{PUBLIC_URL}/v1/unsubscribe?token={make_token(JWT_SECRET, 'ann')}"
    assert ann["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(ann)
    for body in (text, html):
        assert "I was there in 1953." in body
        assert f"{POST_URL}#comment-c1" in body
        assert unsubscribe in body
        assert "Don" in body
    assert inbox.recipients.count(["ann@example.com"]) == 1

    stored = outbox(engine)
    assert stored["ann/c1"]["status"] == "sent"
    assert stored["ann/c1"]["message_id"] == ann["Message-ID"]
    assert as_utc(stored["ann/c1"]["sent_at"]) == NOW
    assert send(engine, mail_settings, NOW + timedelta(hours=1)).claimed == 0
    assert len(inbox.messages) == 2


def test_an_untitled_thread_without_url_links_to_the_api(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    rows.thread("t2", title=None, url=None)
    rows.notify("ann", "c9", kind="thread", thread_id="t2")

    send(engine, mail_settings)

    [message] = inbox.messages
    assert message["Subject"] == "Don commented on a thread you follow"
    text, html = parts(message)
    assert f"{PUBLIC_URL}/c/c9" in text
    assert f"{PUBLIC_URL}/c/c9" in html


def test_names_and_titles_cannot_inject_headers(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    rows.thread("t3", title="Title\r\nBcc: victim@example.com", url=None)
    rows.notify("ann", "c1", thread_id="t3", actor="Don\r\nBcc: evil@example.com")

    send(engine, mail_settings)

    [message] = inbox.messages
    assert message["Bcc"] is None
    assert inbox.recipients == [["ann@example.com"]]
    assert "\n" not in str(message["Subject"])
    assert str(message["Subject"]).startswith("Don Bcc: evil@example.com replied")


def test_non_ascii_names_titles_and_dotted_lines_arrive_intact(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    title = "Ça va? " + "Une très longue histoire de la Corée du Sud " * 3
    rows.thread("t4", title=title, url=None)
    rows.person("zoe", "Zoë “Z” Ünal 李", "zoe@example.com")
    excerpt = "First line\n.\n.hidden by SMTP unless stuffed\nÀ bientôt 🎉"
    rows.notify("zoe", "c1", thread_id="t4", actor="Đorđe", excerpt=excerpt)

    send(engine, mail_settings)

    [message] = inbox.messages
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert str(message["Subject"]).startswith('Đorđe replied to your comment on "Ça va? Une')
    assert str(message["Subject"]).endswith('…"')  # the title cut at 120 characters
    text, html = parts(message)
    assert "> .\n" in text.replace("\r\n", "\n")
    assert "> .hidden by SMTP unless stuffed" in text
    assert "À bientôt 🎉" in text
    assert "Zoë “Z” Ünal 李" in text
    assert "Đorđe" in html


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "ascii-only-server"])
def test_an_internationalized_address_goes_to_a_server_that_takes_smtputf8(
    engine: Engine, mail_settings: Settings, rows: Fixtures, smtputf8: bool
) -> None:
    rows.person("zoe", "Zoë", "zoe@exämple.org")  # (a non-ASCII local part: skipped, as ever)
    rows.notify("zoe", "c1")
    rows.notify("ann", "c1")

    for server in serve(Inbox(), smtputf8=smtputf8):
        summary = send(engine, mail_settings.model_copy(update={"smtp_url": server.smtp_url}))

        stored = outbox(engine)
        if smtputf8:
            assert summary.emails_sent == 2
            assert sorted(server.recipients) == [["ann@example.com"], ["zoe@exämple.org"]]
            assert stored["zoe/c1"]["status"] == "sent"
        else:  # refused before any of it was sent; the next email goes on
            assert (summary.emails_sent, summary.retried) == (1, 1)
            assert server.recipients == [["ann@example.com"]]
            assert "SMTPUTF8" in stored["zoe/c1"]["last_error"]


def test_a_digest_groups_each_recipients_due_rows_by_thread(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    rows.thread("t2", title="Budget day", url="https://news.example/p/budget")
    rows.notify("ann", "c1", frequency="hourly", excerpt="first", at=NOW + timedelta(minutes=5))
    rows.notify(
        "ann",
        "c2",
        frequency="hourly",
        thread_id="t2",
        excerpt="second",
        at=NOW + timedelta(minutes=6),
    )
    rows.notify("ann", "c3", frequency="hourly", excerpt="third", at=NOW + timedelta(minutes=7))
    rows.notify("bob", "c1", frequency="daily", excerpt="first", at=NOW + timedelta(minutes=5))

    assert send(engine, mail_settings, NOW + timedelta(minutes=30)).claimed == 0
    summary = send(engine, mail_settings, NOW + timedelta(hours=1))

    assert (summary.emails_sent, summary.rows_sent) == (1, 3)
    [digest] = inbox.messages
    assert digest["To"] == "Ann Lee <ann@example.com>"
    assert digest["Subject"] == "3 new comments in 2 threads you follow"
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(digest)
    for body in (text, html):
        # Grouped by thread: both comments of t1 come before the thread t2.
        assert body.index("first") < body.index("third") < body.index("Budget day")
        assert body.index("Budget day") < body.index("second")
        assert f"{POST_URL}#comment-c3" in body
        assert "https://news.example/p/budget#comment-c2" in body
    stored = outbox(engine)
    assert {stored[f"ann/{c}"]["message_id"] for c in ("c1", "c2", "c3")} == {digest["Message-ID"]}
    assert stored["bob/c1"]["status"] == "pending"

    send(engine, mail_settings, NOW + timedelta(days=1))
    assert [str(m["To"]) for m in inbox.messages][1:] == ["Bob <bob@example.com>"]
    assert inbox.messages[1]["Subject"] == f'1 new comment on "{TITLE}"'


def test_recipients_without_an_address_are_skipped(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    rows.person("cat", "Cat", None)
    rows.person("eve", "Eve", "eve at example dot com")
    rows.notify("cat", "c1")
    rows.notify("dan", "c1")  # Chorus never learned anything about dan
    rows.notify("eve", "c1")

    summary = send(engine, mail_settings)

    assert (summary.skipped, summary.emails_sent) == (3, 0)
    assert inbox.messages == []
    assert {r["status"] for r in outbox(engine).values()} == {"skipped"}


def test_a_run_marks_all_its_skipped_emails_in_one_statement_and_sends_the_rest(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    for n in range(12):
        rows.person(f"quiet{n}", f"Quiet {n}", None)
        rows.notify(f"quiet{n}", "c1")
    rows.notify("ann", "c1")
    skip_marks: list[object] = []

    def note_skip_marks(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("UPDATE") and "skipped" in str(parameters):
            skip_marks.append(parameters)

    sa.event.listen(engine, "before_cursor_execute", note_skip_marks)
    try:
        summary = send(engine, mail_settings)
    finally:
        sa.event.remove(engine, "before_cursor_execute", note_skip_marks)

    assert (summary.skipped, summary.emails_sent) == (12, 1)
    assert [str(m["To"]) for m in inbox.messages] == ["Ann Lee <ann@example.com>"]
    stored = outbox(engine)
    assert {stored[f"quiet{n}/c1"]["status"] for n in range(12)} == {"skipped"}
    assert stored["ann/c1"]["status"] == "sent"
    assert len(skip_marks) == 1  # twelve skips, one statement


def test_with_smtp_down_rows_wait_then_go_out_exactly_once(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    rows.notify("ann", "c1")
    rows.notify("bob", "c1")
    down = mail_settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})

    summary = send(engine, down)

    assert (summary.retried, summary.emails_sent) == (2, 0)
    for row in outbox(engine).values():
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert as_utc(row["due_at"]) == NOW + timedelta(seconds=30)
        assert "cannot reach the SMTP server" in row["last_error"]
    assert send(engine, mail_settings, NOW + timedelta(seconds=10)).claimed == 0

    send(engine, down, NOW + timedelta(seconds=31))
    assert {as_utc(r["due_at"]) for r in outbox(engine).values()} == {NOW + timedelta(seconds=91)}
    summary = send(engine, mail_settings, NOW + timedelta(seconds=91))
    send(engine, mail_settings, NOW + timedelta(hours=2))

    assert summary.emails_sent == 2
    assert sorted(inbox.recipients) == [["ann@example.com"], ["bob@example.com"]]
    assert {r["status"] for r in outbox(engine).values()} == {"sent"}


def test_a_row_fails_for_good_after_the_last_attempt(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    rows.notify("ann", "c1")
    down = mail_settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{free_port()}", "mail_max_attempts": 2}
    )

    send(engine, down)
    summary = send(engine, down, NOW + timedelta(minutes=5))

    assert summary.failed == 1
    row = outbox(engine)["ann/c1"]
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert send(engine, mail_settings, NOW + timedelta(days=1)).claimed == 0
    assert inbox.messages == []


class Crash(Exception):
    pass


def _crash_after_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_args: object) -> None:
        raise Crash("killed between the server's 250 and the mark")

    monkeypatch.setattr(mailer, "mark_sent", crash)


def test_a_crash_after_sending_resends_once_with_the_same_message_id(
    engine: Engine,
    mail_settings: Settings,
    inbox: Inbox,
    rows: Fixtures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows.notify("ann", "c1")
    with monkeypatch.context() as patch:
        _crash_after_sending(patch)
        with pytest.raises(Crash):
            send(engine, mail_settings)
    assert outbox(engine)["ann/c1"]["status"] == "sending"

    lease = timedelta(seconds=mail_settings.mail_lease_seconds)
    assert send(engine, mail_settings, NOW + lease / 2).claimed == 0  # still claimed
    send(engine, mail_settings, NOW + lease + timedelta(seconds=1))
    send(engine, mail_settings, NOW + 3 * lease)

    # The documented bound: one duplicate for the crash, carrying the same Message-ID.
    assert len(inbox.messages) == 2
    assert len(set(inbox.message_ids())) == 1
    assert outbox(engine)["ann/c1"]["status"] == "sent"


def test_a_mailer_that_keeps_crashing_delivers_at_most_max_attempts_times(
    engine: Engine,
    mail_settings: Settings,
    inbox: Inbox,
    rows: Fixtures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows.notify("ann", "c1")
    flaky = mail_settings.model_copy(update={"mail_max_attempts": 2})
    _crash_after_sending(monkeypatch)
    lease = timedelta(seconds=flaky.mail_lease_seconds)

    for run in range(4):
        with contextlib.suppress(Crash):
            send(engine, flaky, NOW + run * 2 * lease)

    assert len(inbox.messages) == 2
    assert outbox(engine)["ann/c1"]["status"] == "failed"


def test_two_mailers_at_once_send_each_row_once(
    engine: Engine, mail_settings: Settings, inbox: Inbox, rows: Fixtures
) -> None:
    for n in range(24):
        rows.notify("ann", f"c{n:02d}")
    small = mail_settings.model_copy(update={"mail_batch_size": 3})
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            while send(engine, small).claimed:
                pass
        except BaseException as exc:
            errors.append(exc)

    mailers = [threading.Thread(target=run) for _ in range(2)]
    for thread in mailers:
        thread.start()
    for thread in mailers:
        thread.join()

    assert errors == []
    assert len(inbox.messages) == 24
    assert len(set(inbox.message_ids())) == 24
    assert {r["status"] for r in outbox(engine).values()} == {"sent"}


def _preferences(engine: Engine, user_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(user_preferences.c.email_frequency).where(
                user_preferences.c.user_id == user_id
            )
        ).scalar()


def _unsubscribe_path(message: EmailMessage) -> str:
    url = str(message["List-Unsubscribe"]).strip("<>")
    assert url.startswith(f"{PUBLIC_URL}/v1/unsubscribe?token=")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_one_click_unsubscribe_from_an_email_turns_emails_off(
    engine: Engine,
    mail_settings: Settings,
    mail_client: TestClient,
    inbox: Inbox,
    rows: Fixtures,
    event_count: Callable[[], int],
) -> None:
    rows.notify("ann", "c1")
    send(engine, mail_settings)
    path = _unsubscribe_path(inbox.messages[0])

    response = mail_client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    again = mail_client.post(path)

    assert response.status_code == again.status_code == 200
    assert response.json() == again.json() == {"unsubscribed": True}
    assert _preferences(engine, "ann") == "off"
    assert event_count() == 1  # the second click changed nothing
    with engine.connect() as conn:  # the address Chorus knew is kept
        assert (
            conn.execute(sa.select(people.c.email).where(people.c.user_id == "ann")).scalar()
            == "ann@example.com"
        )
    # A row queued before the unsubscribe took effect is not sent.
    rows.notify("ann", "c2", at=NOW + timedelta(minutes=1))
    summary = send(engine, mail_settings, NOW + timedelta(minutes=1))
    assert (summary.skipped, len(inbox.messages)) == (1, 1)


def test_the_unsubscribe_page_asks_first_and_changes_nothing(
    engine: Engine,
    mail_client: TestClient,
    rows: Fixtures,
    event_count: Callable[[], int],
) -> None:
    token = make_token(JWT_SECRET, "ann")

    page = mail_client.get("/v1/unsubscribe", params={"token": token})

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post"' in page.text
    assert f'action="unsubscribe?token={token}"' in page.text
    assert event_count() == 0
    assert _preferences(engine, "ann") is None

    # The page's button: a browser POST that asks for HTML back.
    clicked = mail_client.post(
        f"/v1/unsubscribe?token={token}",
        data={"List-Unsubscribe": "One-Click"},
        headers={"Accept": "text/html"},
    )
    assert clicked.status_code == 200
    assert "You are unsubscribed" in clicked.text
    assert _preferences(engine, "ann") == "off"


@pytest.mark.parametrize(
    "token",
    [
        make_token("some-other-secret", "ann"),
        make_token(JWT_SECRET, "ann").replace("YW5u", "Ym9i"),
        "not-a-token",
    ],
    ids=["other-secret", "swapped-user", "garbage"],
)
def test_a_forged_token_is_refused_and_changes_nothing(
    engine: Engine,
    mail_client: TestClient,
    rows: Fixtures,
    event_count: Callable[[], int],
    token: str,
) -> None:
    for response in (
        mail_client.get("/v1/unsubscribe", params={"token": token}),
        mail_client.post("/v1/unsubscribe", params={"token": token}),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "invalid_unsubscribe_token"
    assert event_count() == 0
    assert _preferences(engine, "ann") is None


def test_mail_runs_are_queued_coalesced_and_clear_their_flag(
    engine: Engine,
    mail_settings: Settings,
    inbox: Inbox,
    rows: Fixtures,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = Queue(FOLD_QUEUE, connection=redis)
    assert enqueue_mail_if_due(redis, 60)
    assert not enqueue_mail_if_due(redis, 60)  # another worker's pass within the interval
    assert nudge_mail(redis)  # coalesced with the queued run
    assert [job.func_name for job in queue.get_jobs()].count(MAIL_JOB) == 1

    rows.notify("ann", "c1", at=datetime.now(UTC))
    monkeypatch.setattr(context, "_current", None)
    ctx = context.open_context(mail_settings)
    try:
        result = jobs.send_due_emails()
    finally:
        ctx.close()

    assert result["emails_sent"] == 1
    assert len(inbox.messages) == 1
    assert not redis.exists(MAIL_PENDING_KEY)
