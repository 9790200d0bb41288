"""Sending over SMTP: `smtp://`, `smtp+starttls://` or `smtps://`, with optional login.

One connection per mailer run, opened on the first send. If it cannot be opened, every
send of the run fails at once (no reconnect storm against a server that is down). If an
open connection breaks before a message's end of data, the message is started again on a
new connection, once; if it breaks after, the message failed (the server may have it) and
the next send reconnects.

The SMTP transaction is driven by hand (MAIL, RCPT, DATA, the data, then the lone "."),
so that the mailer can hold a message just before its end of data (`before_end`): until
then the server has accepted nothing. MAIL, RCPT and DATA go out in one write to a server
that offers PIPELINING, as relays do: two round trips a message instead of four.
"""

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from services.worker.mail_wire import MailMessage

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT_SECONDS = 30.0
_LINE_START_DOT = re.compile(rb"^\.", re.MULTILINE)


class SendError(Exception):
    """The message was not accepted; it may be tried again later. Its text is logged and
    kept in the outbox row: a server's refusal that quotes the recipient's address has it
    replaced (an address is personal data)."""


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"CHORUS_SMTP_URL must start with one of {sorted(DEFAULT_PORTS)}")
    return SmtpTarget(
        scheme=scheme,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpSender:
    def __init__(self, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.target = parse_smtp_url(url)
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None
        self._unreachable: str | None = None

    def send(self, message: MailMessage, *, before_end: Callable[[], object] | None = None) -> None:
        """Hand `message` to the server; `SendError` unless it accepted it.

        The server takes the message at the end of its data (the lone "."), and only then:
        everything before is safe to redo. A reused connection found broken before that
        point (the server dropped it while idle, or answered 421 "closing") is reopened
        once and the message started again. `before_end` runs just before the end of the
        data; if it raises, the message is abandoned (the connection is dropped, so the
        server discards it) and the error propagates.
        """
        data = _dot_stuffed(message.data)
        while True:
            reused = self._smtp is not None
            smtp = self._connection()
            try:
                _transfer(smtp, message, data)
                break
            # First: smtplib's exceptions are OSErrors too, and a refusal is no lost line.
            except smtplib.SMTPResponseException as exc:
                self._after_refusal(smtp, exc)
                if not (reused and exc.smtp_code == 421):  # 421: "closing", not a refusal
                    refused = _describe(exc).replace(message.recipient, "<the recipient>")
                    raise SendError(f"SMTP refused the message: {refused}") from exc
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._drop()
                if not reused:
                    raise SendError(f"SMTP connection lost: {_describe(exc)}") from exc
        try:
            if before_end is not None:
                before_end()
        except BaseException:
            self._drop()
            raise
        try:
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Sent whole: the server may have taken it. The outcome is unknown.
            self._drop()
            raise SendError(f"SMTP connection lost: {_describe(exc)}") from exc
        if code != 250:
            error = smtplib.SMTPDataError(code, reply)
            if code == 421:
                self._drop()
            refused = _describe(error).replace(message.recipient, "<the recipient>")
            raise SendError(f"SMTP refused the message: {refused}")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _connection(self) -> smtplib.SMTP:
        if self._unreachable is not None:
            raise SendError(self._unreachable)
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (smtplib.SMTPException, OSError) as exc:
                self._unreachable = f"cannot reach the SMTP server: {_describe(exc)}"
                raise SendError(self._unreachable) from exc
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        smtp: smtplib.SMTP
        if t.scheme == "smtps":
            context = ssl.create_default_context()
            smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        try:
            # Each command goes out as written: the end of data, a few bytes sent apart
            # from the data, must not wait for the data's ACK (Nagle), 40 ms each time.
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if t.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if t.username:
                smtp.login(t.username, t.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def _after_refusal(self, smtp: smtplib.SMTP, exc: smtplib.SMTPResponseException) -> None:
        """Leave the connection ready for the next message, or drop it."""
        if exc.smtp_code == 421:  # the server is closing the connection
            self._drop()
            return
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _transfer(smtp: smtplib.SMTP, message: MailMessage, data: bytes) -> None:
    """Everything of one message but the end of its data."""
    # The addresses are single addr-specs without space or control character
    # (mail_headers.mailbox checked them): no parsing them again, as smtplib's would.
    options = ""
    smtp.command_encoding = "ascii"
    if message.smtputf8:
        if not smtp.has_extn("smtputf8"):
            raise smtplib.SMTPResponseException(553, b"an internationalized address: no SMTPUTF8")
        smtp.command_encoding = "utf-8"
        options = " SMTPUTF8 BODY=8BITMIME" if smtp.has_extn("8bitmime") else " SMTPUTF8"
    mail = f"MAIL FROM:<{message.sender}>{options}"
    _envelope(smtp, (mail, f"RCPT TO:<{message.recipient}>", "DATA"))
    smtp.send(data)


# What MAIL, RCPT and DATA each answer when the server goes on.
_ENVELOPE_REPLIES = ((250,), (250, 251), (354,))


def _envelope(smtp: smtplib.SMTP, commands: tuple[str, str, str]) -> None:
    """MAIL, RCPT and DATA; raise the first refusal among them.

    A server that offers PIPELINING (RFC 2920) gets the three in one write and answers
    them in order: one round trip instead of three. Any other gets each after the answer
    to the one before, and nothing more after a refusal.
    """
    replies: list[tuple[int, bytes]] = []
    if smtp.has_extn("pipelining"):
        smtp.send("".join(f"{command}\r\n" for command in commands))
        for _ in commands:
            replies.append(smtp.getreply())
            if replies[-1][0] == 421:  # closing: no further answers come
                break
    else:
        for command, expected in zip(commands, _ENVELOPE_REPLIES, strict=True):
            smtp.putcmd(command)
            replies.append(smtp.getreply())
            if replies[-1][0] not in expected:
                break
    refusals = [
        (code, reply)
        for (code, reply), expected in zip(replies, _ENVELOPE_REPLIES, strict=False)
        if code not in expected
    ]
    if not refusals:
        return
    if replies[-1][0] == 354:
        # DATA was taken though MAIL or RCPT was refused (RFC 2920 forbids it, some servers
        # do it): end the empty message, whose transaction has no recipient to deliver to.
        smtp.send(b".\r\n")
        smtp.getreply()
    raise smtplib.SMTPResponseException(*refusals[0])


def _dot_stuffed(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line that starts with "." gets another; the data ends in CRLF."""
    stuffed = _LINE_START_DOT.sub(b"..", data) if b"\n." in data or data[:1] == b"." else data
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        return f"{exc.smtp_code} {text}"
    return f"{type(exc).__name__}: {exc}"


class Sender(Protocol):
    def send(
        self, message: MailMessage, *, before_end: Callable[[], object] | None = None
    ) -> None: ...

    def close(self) -> None: ...


def open_sender(url: str) -> Sender:
    """SMTP for smtp://, smtp+starttls:// and smtps://; a directory of .eml files for file://."""
    if url.startswith("file://"):
        from services.worker.file_sender import FileSender

        return FileSender(url)
    return SmtpSender(url)
