"""Sending over SMTP: `smtp://`, `smtp+starttls://` or `smtps://`, with optional login.

One connection per mailer run, opened on the first send. If it cannot be opened, every
send of the run fails at once (no reconnect storm against a server that is down); if an
open connection breaks, the next send reconnects once.
"""

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT_SECONDS = 30.0


class SendError(Exception):
    """The message was not accepted; it may be tried again later."""


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

    def send(self, message: EmailMessage) -> None:
        """Hand `message` to the server; `SendError` unless it was accepted."""
        smtp = self._connection()
        try:
            smtp.send_message(message)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise SendError(f"SMTP connection lost: {_describe(exc)}") from exc
        except smtplib.SMTPException as exc:
            raise SendError(f"SMTP refused the message: {_describe(exc)}") from exc

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


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        return f"{exc.smtp_code} {text}"
    return f"{type(exc).__name__}: {exc}"


class Sender(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


def open_sender(url: str) -> Sender:
    """SMTP for smtp://, smtp+starttls:// and smtps://; a directory of .eml files for file://."""
    if url.startswith("file://"):
        from services.worker.file_sender import FileSender

        return FileSender(url)
    return SmtpSender(url)
