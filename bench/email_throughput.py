"""Emails rendered and sent per second, through the real mailer, to a local SMTP sink.

Writes N due outbox rows (with their notifications, people and thread) directly, starts an
SMTP server on 127.0.0.1 in its own process that accepts and discards, and times mailer
runs until every row is sent. Needs the dev extra (aiosmtpd, psutil). Besides the rate it
reports the CPU time per email of the mailer's process (all its threads: composing, SMTP
client, marks; not PostgreSQL's) and of the sink. The sink answers one connection, one
command at a time, so its CPU per email is a floor under the time per email.

The sink is aiosmtpd's (Python) unless `--smtp-sink` names Postfix's `smtp-sink`, the
C test server Postfix ships for measuring SMTP clients (`apt-get install postfix`, or
`apt-get download postfix && dpkg-deb -x postfix_*.deb DIR` for the binary alone, at
DIR/usr/sbin/smtp-sink). The same run also times the ceiling: a bare smtplib loop sending
one prebuilt message of the mailer's size to the same sink, with no database.

    .venv/bin/python bench/email_throughput.py --emails 2000
    .venv/bin/python bench/email_throughput.py --emails 2000 --smtp-sink /usr/sbin/smtp-sink \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/chorus_bench_mail
"""

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import sqlalchemy as sa

from services.worker.mailer import send_due_emails
from shared.db import create_db_engine
from shared.ids import new_id
from shared.migrate import upgrade
from shared.notification_tables import email_outbox, notifications, people
from shared.projection_tables import LIVE
from shared.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")


def seed(engine: sa.Engine, emails: int, no_address: float) -> None:
    """`emails` due rows; every 1/`no_address`-th reader has no address (skipped)."""
    every = round(1 / no_address) if no_address else 0
    now = datetime.now(UTC)
    thread = f"mail-{new_id()}"
    with engine.begin() as conn:
        conn.execute(
            LIVE.threads.insert().values(
                thread_id=thread,
                title="South Korea and the POWs",
                url="https://news.example/p/pows",
                created_at=now,
            )
        )
        for start in range(0, emails, 1000):
            users = [f"reader{i}-{thread}" for i in range(start, min(emails, start + 1000))]
            comment = new_id()
            conn.execute(
                people.insert(),
                [
                    {
                        "user_id": u,
                        "name": "Reader",
                        "email": None if every and n % every == 0 else f"{u}@example.com",
                        "updated_at": now,
                    }
                    for n, u in enumerate(users, start)
                ],
            )
            conn.execute(
                notifications.insert(),
                [
                    {
                        "recipient_id": u,
                        "comment_id": comment,
                        "kind": "conversation",
                        "thread_id": thread,
                        "actor_id": "don",
                        "actor_name": "Don",
                        "excerpt": "Because the armistice said so.",
                        "position": 1,
                        "created_at": now,
                    }
                    for u in users
                ],
            )
            conn.execute(
                email_outbox.insert(),
                [
                    {
                        "recipient_id": u,
                        "comment_id": comment,
                        "frequency": "immediate",
                        "status": "pending",
                        "due_at": now,
                        "attempts": 0,
                        "created_at": now,
                    }
                    for u in users
                ],
            )


def start_sink(port: int, smtp_sink: str | None) -> subprocess.Popen[bytes]:
    """The sink runs in its own process, as a real SMTP server would: it accepts and discards."""
    if smtp_sink is None:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
        return subprocess.Popen([*command, "-c", "aiosmtpd.handlers.Sink"])
    env = dict(os.environ)
    libraries = Path(smtp_sink).resolve().parents[1] / "lib" / "postfix"
    if libraries.is_dir():  # a binary unpacked from the .deb, beside its libraries
        env["LD_LIBRARY_PATH"] = str(libraries)
    # smtp-sink refuses to keep root's privileges; -c counts, so it answers every command.
    privileges = ["-u", "nobody"] if os.geteuid() == 0 else []
    return subprocess.Popen([smtp_sink, *privileges, f"127.0.0.1:{port}", "64"], env=env)


# The size of the email this script has the mailer send (46 lines, measured through file://).
MESSAGE_BYTES = 2_300


def bare_ceiling(port: int, size: int, count: int) -> float:
    """Emails/s of a bare smtplib loop: one prebuilt message of `size` bytes, one connection."""
    body = b"Subject: ceiling\r\n\r\n" + (b"x" * 70 + b"\r\n") * (size // 72)
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        if smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        for _ in range(count):
            smtp.sendmail("chorus@news.example", ["reader@example.com"], body)
        return count / (time.perf_counter() - started)


def run(database_url: str, emails: int, no_address: float, smtp_sink: str | None) -> None:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    port = free_port()
    sink = start_sink(port, smtp_sink)
    try:
        wait_for_port(port)
        seed(engine, emails, no_address)
        if engine.dialect.name == "postgresql":
            # Fresh statistics, as autovacuum keeps them: planned on an empty table's, the
            # mailer's join of 200 rows scans every notification and person (36 ms, not 1.5).
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
        settings = Settings(database_url=database_url, smtp_url=f"smtp://127.0.0.1:{port}")
        sink_cpu = psutil.Process(sink.pid)
        sink_before = sum(sink_cpu.cpu_times()[:2])
        cpu_before = time.process_time()
        started = time.perf_counter()
        sent = skipped = runs = 0
        while sent + skipped < emails and runs < emails:
            summary = send_due_emails(engine, settings)
            sent, skipped, runs = sent + summary.emails_sent, skipped + summary.skipped, runs + 1
        elapsed = time.perf_counter() - started
        mailer_ms = (time.process_time() - cpu_before) * 1000 / max(sent + skipped, 1)
        sink_ms = (sum(sink_cpu.cpu_times()[:2]) - sink_before) * 1000 / max(sent, 1)
        ceiling = bare_ceiling(port, MESSAGE_BYTES, max(sent, 500))
    finally:
        sink.terminate()
        sink.wait()
        engine.dispose()
    print(
        f"| {engine.dialect.name} | {sent:,} ({skipped:,} skipped) | {runs} | {elapsed:.1f} s "
        f"| {(sent + skipped) / elapsed:,.0f} "
        f"| {mailer_ms:.2f} ms | {sink_ms:.2f} ms | {ceiling:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument(
        "--no-address-share", type=float, default=0.0, help="readers without an address"
    )
    parser.add_argument(
        "--smtp-sink", default=None, help="Postfix's smtp-sink binary instead of aiosmtpd"
    )
    args = parser.parse_args()
    print(
        "| database | emails sent | mailer runs | time | rows/s | mailer CPU | sink CPU "
        "| bare smtplib loop, emails/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    if args.database_url:
        run(args.database_url, args.emails, args.no_address_share, args.smtp_sink)
        return
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'mail.db'}"
        run(url, args.emails, args.no_address_share, args.smtp_sink)


if __name__ == "__main__":
    main()
