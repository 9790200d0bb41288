"""A real SMTP server for tests: aiosmtpd in-process, keeping every message it accepts."""

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TypeVar

from aiosmtpd.controller import Controller

from tests.ports import free_port


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    pipelining = False  # offer PIPELINING (RFC 2920): `serve(..., pipelining=True)`

    def __init__(self) -> None:
        self.smtp_url = ""
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.peers: list[Any] = []  # the client's (host, port) each message came over

    async def handle_EHLO(
        self, _server: Any, session: Any, _envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads commands in turn: it pipelines, unadvertised
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        self.peers.append(session.peer)
        return "250 OK"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


H = TypeVar("H", bound=Inbox)


def serve(handler: H, *, smtputf8: bool = False, pipelining: bool = False) -> Iterator[H]:
    """Run `handler` behind an SMTP server on a free port for as long as the caller needs
    (`smtputf8`: one that takes internationalized addresses; `pipelining`: one that offers
    PIPELINING)."""
    handler.pipelining = pipelining
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=smtputf8
    )
    controller.start()
    handler.smtp_url = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield handler
    finally:
        controller.stop()
