"""A mailer run's batch: one SMTP connection, reopened when the server drops it, and the
sent marks committed one email behind the sending without widening the duplicate bound
(decisions 12 and 37). A real aiosmtpd server (in-process), offering PIPELINING or not,
and both databases."""

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker import mail_marks, mailer
from services.worker.mail_marks import SentMarks
from shared.settings import Settings
from tests.integration.test_mailer import NOW, Crash, Fixtures, outbox, send
from tests.smtp_sink import Inbox, serve

PEOPLE = ["p0", "p1", "p2", "p3", "p4"]


class DroppingInbox(Inbox):
    """Closes a connection when a client starts its `(per_connection + 1)`th message on it,
    as a server does that limits messages per connection or times out idle ones."""

    def __init__(self, per_connection: int) -> None:
        super().__init__()
        self.per_connection = per_connection
        self.started: dict[Any, int] = {}
        self.dropped = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        self.started[session.peer] = self.started.get(session.peer, 0) + 1
        if self.started[session.peer] > self.per_connection:
            self.dropped += 1
            server.transport.close()
            return "421 closing this connection"
        envelope.mail_from = address
        return "250 OK"


class WatchingInbox(Inbox):
    """Also records every RCPT: a message's transfer began, whether or not it ended."""

    def __init__(self) -> None:
        super().__init__()
        self.rcpts: list[str] = []

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        self.rcpts.append(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture(params=[False, True], ids=["one command at a time", "pipelining"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    """Whether the server offers PIPELINING: the client then sends MAIL, RCPT and DATA in
    one write, and must read their answers, refusals included, the same."""
    return bool(request.param)


@pytest.fixture
def dropping_inbox(pipelining: bool) -> Iterator[DroppingInbox]:
    yield from serve(DroppingInbox(per_connection=2), pipelining=pipelining)


@pytest.fixture
def watching_inbox(pipelining: bool) -> Iterator[WatchingInbox]:
    yield from serve(WatchingInbox(), pipelining=pipelining)


def people(engine: Engine) -> Fixtures:
    rows = Fixtures(engine)
    rows.thread()
    for person in PEOPLE:
        rows.person(person, person.upper(), f"{person}@example.com")
    return rows


def settings_for(settings: Settings, inbox: Inbox) -> Settings:
    return settings.model_copy(update={"smtp_url": inbox.smtp_url})


class EnvelopeInbox(Inbox):
    """Records, at each MAIL, whether the RCPT and DATA after it came in the same write."""

    def __init__(self) -> None:
        super().__init__()
        self.in_one_write: list[bool] = []

    async def handle_MAIL(
        self, server: Any, _session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        # What the client sent that the server has not handled yet (aiosmtpd's reader).
        waiting = bytes(server._reader._buffer)
        self.in_one_write.append(b"RCPT TO:" in waiting and waiting.endswith(b"DATA\r\n"))
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


def test_a_run_sends_its_whole_batch_over_one_connection(
    engine: Engine, settings: Settings, pipelining: bool
) -> None:
    """To a server that offers PIPELINING (RFC 2920), each envelope goes in one write: two
    round trips an email instead of four. To any other, one command at a time."""
    for inbox in serve(EnvelopeInbox(), pipelining=pipelining):
        rows = people(engine)
        for person in PEOPLE:
            rows.notify(person, "c1")

        summary = send(engine, settings_for(settings, inbox))

        assert summary.emails_sent == len(PEOPLE)
        assert len(inbox.peers) == len(PEOPLE)
        assert len(set(inbox.peers)) == 1
        assert inbox.in_one_write == [pipelining] * len(PEOPLE)


def test_a_dropped_connection_is_reopened_and_the_email_sent_in_the_same_run(
    engine: Engine, settings: Settings, dropping_inbox: DroppingInbox
) -> None:
    rows = people(engine)
    for person in PEOPLE:
        rows.notify(person, "c1")

    summary = send(engine, settings_for(settings, dropping_inbox))

    # Dropped before the end of data, the server had taken nothing: no retry needed.
    assert (summary.emails_sent, summary.retried, summary.failed) == (5, 0, 0)
    assert dropping_inbox.dropped == 2
    assert sorted(r[0] for r in dropping_inbox.recipients) == [f"{p}@example.com" for p in PEOPLE]
    connections = [dropping_inbox.peers.count(peer) for peer in dict.fromkeys(dropping_inbox.peers)]
    assert connections == [2, 2, 1]
    assert {r["status"] for r in outbox(engine).values()} == {"sent"}


class DropAtEnd(Inbox):
    """Drops the connection instead of answering the end of one recipient's data: the
    client cannot know whether the server took the message."""

    victim = "p1@example.com"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if envelope.rcpt_tos == [self.victim] and self.victim not in self.dropped_for:
            self.dropped_for.append(self.victim)
            server.transport.close()
            return "451 gone"
        return await super().handle_DATA(server, session, envelope)

    def __init__(self) -> None:
        super().__init__()
        self.dropped_for: list[str] = []


def test_a_drop_after_the_end_of_data_is_a_failure_to_retry_and_the_rest_go_on(
    engine: Engine, settings: Settings, pipelining: bool
) -> None:
    for inbox in serve(DropAtEnd(), pipelining=pipelining):
        rows = people(engine)
        for person in PEOPLE:
            rows.notify(person, "c1")
        mail_settings = settings_for(settings, inbox)

        summary = send(engine, mail_settings)

        assert (summary.emails_sent, summary.retried) == (4, 1)
        assert len(set(inbox.peers)) == 2  # the rest went on over a new connection
        row = outbox(engine)["p1/c1"]
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert "SMTP connection lost" in row["last_error"]

        send(engine, mail_settings, NOW + timedelta(minutes=1))
        assert sorted(r[0] for r in inbox.recipients) == [f"{p}@example.com" for p in PEOPLE]


class WatchedMarks:
    """The run's real marks, with a hook at each mark and each wait for one."""

    def __init__(
        self,
        real: SentMarks,
        on_add: Callable[[str], bool],
        on_settled: Callable[[], None],
    ) -> None:
        self.real, self.on_add, self.on_settled = real, on_add, on_settled

    def add(self, row_ids: Sequence[int], message_id: str, sent_at: datetime) -> None:
        if self.on_add(message_id):
            self.real.add(row_ids, message_id, sent_at)

    def settled(self) -> None:
        self.on_settled()
        self.real.settled()

    def close(self) -> None:
        self.real.close()


def watch_marks(
    monkeypatch: pytest.MonkeyPatch,
    on_add: Callable[[str], bool],
    on_settled: Callable[[], None],
) -> None:
    real_open = mailer.open_marks
    monkeypatch.setattr(
        mailer, "open_marks", lambda engine: WatchedMarks(real_open(engine), on_add, on_settled)
    )


def message_id_of(engine: Engine, person: str) -> str:
    return str(outbox(engine)[f"{person}/c1"]["message_id"])


def test_a_crash_while_marking_leaves_at_most_one_email_accepted_and_unmarked(
    engine: Engine,
    settings: Settings,
    watching_inbox: WatchingInbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker dies between the server's 250 for p1's email and its mark reaching the
    database, while p2's email is on the wire: p2's end of data waited for that mark, so
    the server never took p2's email. After the lease, p1's email goes again (the one
    duplicate the bound allows, with its Message-ID) and p2's, p3's and p4's once."""
    rows = people(engine)
    for person in PEOPLE:
        rows.notify(person, "c1")
    mail_settings = settings_for(settings, watching_inbox)
    lost: list[str] = []

    def add(message_id: str) -> bool:
        if message_id == message_id_of(engine, "p1"):
            lost.append(message_id)
            return False  # p1's mark never reaches the database
        return True

    def settled() -> None:
        if lost:  # p2's end of data is waiting for p1's mark: the worker dies here
            assert watching_inbox.rcpts[-1] == "p2@example.com"
            raise Crash("killed between the server's 250 and the mark")

    with monkeypatch.context() as patch:
        watch_marks(patch, add, settled)
        with pytest.raises(Crash):
            send(engine, mail_settings)

    assert watching_inbox.rcpts == ["p0@example.com", "p1@example.com", "p2@example.com"]
    statuses = {key: row["status"] for key, row in outbox(engine).items()}
    assert statuses == {
        "p0/c1": "sent",
        "p1/c1": "sending",  # accepted, unmarked: the crash's one duplicate
        "p2/c1": "sending",  # transferred but for its end of data: not accepted
        "p3/c1": "sending",
        "p4/c1": "sending",
    }

    lease = timedelta(seconds=mail_settings.mail_lease_seconds)
    summary = send(engine, mail_settings, NOW + lease + timedelta(seconds=1))

    assert summary.emails_sent == 4
    received = [r[0] for r in watching_inbox.recipients]
    assert sorted(received) == sorted([f"{p}@example.com" for p in PEOPLE] + ["p1@example.com"])
    p1 = [m["Message-ID"] for m in watching_inbox.messages if m["To"] == "P1 <p1@example.com>"]
    assert len(p1) == 2
    assert len(set(p1)) == 1
    assert {r["status"] for r in outbox(engine).values()} == {"sent"}


def test_marks_commit_while_the_next_email_goes_out(
    engine: Engine,
    settings: Settings,
    watching_inbox: WatchingInbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The overlap itself: p0's mark is under way (on its thread, or sent to PostgreSQL)
    before p1's transfer begins, and first waited for at p1's end of data."""
    rows = people(engine)
    rows.notify("p0", "c1")
    rows.notify("p1", "c1")
    started: list[int] = []  # RCPTs the server had when p0's mark began
    waits: list[int] = []  # ... and at each wait for a mark

    def add(message_id: str) -> bool:
        started.append(len(watching_inbox.rcpts))
        return True

    watch_marks(monkeypatch, add, lambda: waits.append(len(watching_inbox.rcpts)))
    summary = send(engine, settings_for(settings, watching_inbox))

    assert started == [1, 2]  # p0's mark began before p1's RCPT
    assert waits == [1, 2, 2]  # p0's end of data (no mark yet), p1's, the run's end
    assert summary.emails_sent == 2
    assert {r["status"] for r in outbox(engine).values()} == {"sent"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_mark_the_database_refuses_abandons_the_waiting_email(
    engine: Engine,
    settings: Settings,
    watching_inbox: WatchingInbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL answers p0's mark with an error: p1's email, waiting at its end of data,
    is dropped unsent, the error propagates, and the connection for marks is not reused."""
    rows = people(engine)
    rows.notify("p0", "c1")
    rows.notify("p1", "c1")
    monkeypatch.setattr(
        mail_marks, "_MARK_SENT_SQL", b"SELECT $1::timestamptz, $2, $3::bigint[] FROM no_table"
    )

    with pytest.raises(mail_marks.MarkFailed, match="no_table"):
        send(engine, settings_for(settings, watching_inbox))

    assert watching_inbox.rcpts == ["p0@example.com", "p1@example.com"]
    assert [r[0] for r in watching_inbox.recipients] == ["p0@example.com"]
    assert {key: r["status"] for key, r in outbox(engine).items()} == {
        "p0/c1": "sending",
        "p1/c1": "sending",
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_database_lost_while_a_mark_is_in_flight_costs_at_most_one_duplicate(
    engine: Engine,
    settings: Settings,
    watching_inbox: WatchingInbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL ends the marks' connection while p1 waits for p0's mark. Whichever mark
    finds the connection gone (p0's answer may have arrived first), the run stops there,
    the email waiting at its end of data is never taken, and after the lease every email
    arrives, at most one of them twice (with one Message-ID)."""
    rows = people(engine)
    for person in PEOPLE:
        rows.notify(person, "c1")
    mail_settings = settings_for(settings, watching_inbox)
    ended: list[int] = []

    def settled() -> None:
        if len(watching_inbox.rcpts) == 2 and not ended:  # p1 waits for p0's mark
            with engine.connect() as conn:
                # The server ends the backend whose last statement was a sent mark.
                found = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE query LIKE 'UPDATE email_outbox SET status = ''sent''%'"
                        " AND pid <> pg_backend_pid()"
                    )
                )
                ended.extend(1 for _ in found)

    with monkeypatch.context() as patch:
        watch_marks(patch, lambda _message_id: True, settled)
        with pytest.raises(mail_marks.MarkFailed):
            send(engine, mail_settings)

    assert ended == [1]
    accepted = [r[0] for r in watching_inbox.recipients]
    assert accepted == [f"{p}@example.com" for p in PEOPLE[: len(accepted)]]
    assert 1 <= len(accepted) < len(PEOPLE)
    # Begun but never taken: at most the one email that waited at its end of data.
    assert len(watching_inbox.rcpts) <= len(accepted) + 1

    lease = timedelta(seconds=mail_settings.mail_lease_seconds)
    send(engine, mail_settings, NOW + lease + timedelta(seconds=1))

    received = [r[0] for r in watching_inbox.recipients]
    assert sorted(set(received)) == [f"{p}@example.com" for p in PEOPLE]
    assert len(received) - len(set(received)) <= 1  # the one mark whose fate was unknown
    for person in PEOPLE:
        to = f"{person.upper()} <{person}@example.com>"
        assert len({m["Message-ID"] for m in watching_inbox.messages if m["To"] == to}) == 1
    assert {r["status"] for r in outbox(engine).values()} == {"sent"}


class RefusingInbox(Inbox):
    """Refuses one recipient, quoting the address back as servers do."""

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address == "p1@example.com":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refusal_keeps_the_connection_and_no_address_reaches_the_log_or_the_row(
    engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture, pipelining: bool
) -> None:
    for inbox in serve(RefusingInbox(), pipelining=pipelining):
        rows = people(engine)
        for person in PEOPLE:
            rows.notify(person, "c1")

        summary = send(engine, settings_for(settings, inbox))

        assert (summary.emails_sent, summary.retried) == (4, 1)
        assert len(set(inbox.peers)) == 1  # RSET, and the next email on the same connection
        error = outbox(engine)["p1/c1"]["last_error"]
        assert error.startswith("SMTP refused the message: 550 5.1.1 <<the recipient>>")
        # Our log lines (the in-process test server's own "mail.log" is not ours).
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("services.")]
        assert any("SMTP refused the message" in line for line in ours)
        assert not [line for line in ours if "p1@example.com" in line]


class CarelessInbox(RefusingInbox):
    """Refuses p1's RCPT, yet answers its pipelined DATA with 354 (RFC 2920 says 503 or
    554 after no recipient was taken; not every server does)."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        answer = await super().handle_RCPT(server, session, envelope, address, options)
        if address == "p1@example.com":
            envelope.rcpt_tos.append(address)  # so that DATA goes on
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if envelope.rcpt_tos == ["p1@example.com"]:
            self.empty_ends.append(envelope.content)
            return "250 OK"
        return await super().handle_DATA(server, session, envelope)

    def __init__(self) -> None:
        super().__init__()
        self.empty_ends: list[bytes] = []


def test_data_taken_after_a_refused_recipient_is_ended_empty_and_the_refusal_stands(
    engine: Engine, settings: Settings
) -> None:
    for inbox in serve(CarelessInbox(), pipelining=True):
        rows = people(engine)
        for person in PEOPLE:
            rows.notify(person, "c1")

        summary = send(engine, settings_for(settings, inbox))

        assert (summary.emails_sent, summary.retried) == (4, 1)
        assert inbox.empty_ends == [b""]  # the message itself never went
        assert len(set(inbox.peers)) == 1
        assert outbox(engine)["p1/c1"]["status"] == "pending"
        assert sorted(r[0] for r in inbox.recipients) == [
            f"{p}@example.com" for p in PEOPLE if p != "p1"
        ]
