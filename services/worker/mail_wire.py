"""An email as SMTP carries it: the envelope's two addresses and the message's bytes.

`alternative` assembles a multipart/alternative message (text, then HTML) from header
lines built by `mail_headers`. Each body goes out `7bit` when it is ASCII in lines of at
most 998 bytes, else `quoted-printable` (`binascii`, in C): 7-bit clean over any relay,
without asking the server for 8BITMIME. Lines end in CRLF; SMTP's dot-stuffing is the
sender's business.
"""

import binascii
import secrets
from dataclasses import dataclass, field

from services.worker.mail_headers import HARD_LIMIT


@dataclass(frozen=True)
class MailMessage:
    """What a sender hands to the server. The addresses and the bytes are personal data:
    they stay out of `repr`, so out of any log line that shows a message."""

    message_id: str
    sender: str = field(repr=False)  # MAIL FROM
    recipient: str = field(repr=False)  # RCPT TO
    data: bytes = field(repr=False)

    @property
    def smtputf8(self) -> bool:
        """An internationalized address: only a server that takes SMTPUTF8 can carry it."""
        return not (self.sender.isascii() and self.recipient.isascii())


def alternative(headers: bytes, text: str, html: str) -> bytes:
    """`headers` (CRLF-terminated lines), then a text and an HTML body as alternatives."""
    parts = [_part("plain", text), _part("html", html)]
    boundary = _boundary(parts)
    delimiter = b"--" + boundary
    return b"".join(
        [
            headers,
            b"MIME-Version: 1.0\r\n",
            b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n',
            b"\r\n",
            # The CRLF before a delimiter belongs to it: each body keeps its last line break.
            *(delimiter + b"\r\n" + part + b"\r\n" for part in parts),
            delimiter + b"--\r\n",
        ]
    )


def _part(subtype: str, body: str) -> bytes:
    lines = body.encode("utf-8").splitlines()  # CR, LF or CRLF: bytes know no others
    content = b"".join(line + b"\r\n" for line in lines)
    if content.isascii() and all(len(line) <= HARD_LIMIT for line in lines):
        encoding = b"7bit"
    else:
        encoding = b"quoted-printable"
        content = binascii.b2a_qp(content, istext=True)
    return b"".join(
        [
            b"Content-Type: text/" + subtype.encode() + b'; charset="utf-8"\r\n',
            b"Content-Transfer-Encoding: " + encoding + b"\r\n",
            b"\r\n",
            content,
        ]
    )


def _boundary(parts: list[bytes]) -> bytes:
    """A random delimiter; quoted-printable never writes "=_", and 7bit text is checked."""
    while True:
        boundary = b"=_chorus_" + secrets.token_hex(12).encode()
        if not any(boundary in part for part in parts):
            return boundary
