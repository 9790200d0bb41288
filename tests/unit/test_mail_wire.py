"""The message's bytes: a multipart/alternative that any parser reads back. No I/O."""

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from services.worker.mail_wire import MailMessage, alternative

HEADERS = b"Subject: hi\r\nTo: ann@example.com\r\n"


def read(data: bytes) -> tuple[EmailMessage, str, str]:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message.defects == []
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    # As a client shows it: lines, whatever ends them on the wire (CRLF here).
    return message, _lines(text.get_content()), _lines(html.get_content())


def _lines(body: str) -> str:
    return body.replace("\r\n", "\n")


def encodings(message: EmailMessage) -> list[str]:
    return [str(part["Content-Transfer-Encoding"]) for part in message.iter_parts()]


def test_ascii_bodies_go_out_as_they_are() -> None:
    text = "Hi Ann,\n\n> I was there.\n\nRead it: https://example.org/" + "x" * 300 + "\n"
    html = "<p>Hi Ann,</p>\n"

    message, got_text, got_html = read(alternative(HEADERS, text, html))

    assert (got_text, got_html) == (text, html)
    assert encodings(message) == ["7bit", "7bit"]
    assert message["Subject"] == "hi"
    assert message["MIME-Version"] == "1.0"


def test_non_ascii_or_overlong_lines_go_quoted_printable_and_read_back_exactly() -> None:
    text = "Zoë wrote “hello” 🎉\n.\n.hidden\nFrom the start\ntrailing space \n"
    html = "<p>" + "y" * 1200 + "</p>\n"

    data = alternative(HEADERS, text, html)
    message, got_text, got_html = read(data)

    assert (got_text, got_html) == (text, html)
    assert encodings(message) == ["quoted-printable", "quoted-printable"]
    assert data.isascii()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_every_line_ends_in_crlf_whatever_the_body_used() -> None:
    data = alternative(HEADERS, "one\rtwo\r\nthree\nfour", "<p>\r</p>")

    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    _, text, html = read(data)
    assert text == "one\ntwo\nthree\nfour\n"
    assert html == "<p>\n</p>\n"


@pytest.mark.parametrize("sneaky", ["--=_chorus_", "\n--=_chorus_0\n", "=_chorus_" * 20])
def test_a_body_cannot_end_its_part(sneaky: str) -> None:
    _, text, html = read(alternative(HEADERS, sneaky, sneaky))

    expected = "\n".join(sneaky.splitlines()) + "\n"
    assert (text, html) == (expected, expected)


def test_personal_data_stays_out_of_repr() -> None:
    message = MailMessage("<id@example.org>", "from@example.org", "ann@example.com", b"Ann")

    assert repr(message) == "MailMessage(message_id='<id@example.org>')"
