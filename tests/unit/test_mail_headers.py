"""Header fields on the wire (RFC 5322 folding, RFC 2047 encoded words). No I/O.

Each header is checked by what a mail client makes of it: Python's own parser
(`policy.default`, which decodes encoded words and unfolds lines) must give back exactly
the text that went in, and every line must stay within RFC 2047's 76 characters.
"""

import random
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader
from email.message import Message
from email.utils import parseaddr

import pytest

from services.worker.mail_headers import (
    HeaderError,
    encoded_words,
    mailbox,
    raw,
    unstructured,
)


def parsed(header: bytes, name: str) -> str:
    message = message_from_bytes(header + b"\r\n", policy=policy.default)
    assert message.defects == []
    return str(message[name])


def address(header: bytes) -> tuple[str, str]:
    return address_of(message_from_bytes(header + b"\r\n", policy=policy.default))


def address_of(message: Message) -> tuple[str, str]:
    value = message["To"]
    assert isinstance(value, AddressHeader)
    [one] = value.addresses
    return one.display_name, one.addr_spec


def display_name_per_rfc2047(header: bytes) -> tuple[str, str]:
    """The address as RFC 2047 §6.2 reads it: space between adjacent encoded words is
    dropped. (`policy.default`'s address parser keeps one there, even in what its own
    generator folds; its unstructured parser, and `decode_header`, do not.)"""
    value = header.decode("ascii").split(":", 1)[1].replace("\r\n", "")
    name, addr_spec = parseaddr(value)
    return str(make_header(decode_header(name))), addr_spec


def lines(header: bytes) -> list[bytes]:
    assert header.endswith(b"\r\n")
    split = header[:-2].split(b"\r\n")
    assert all(line.startswith(b" ") for line in split[1:]), "continuations start with a space"
    return split


def assert_short_lines(header: bytes) -> None:
    assert all(len(line) <= 76 for line in lines(header)), header


@pytest.mark.parametrize(
    "subject",
    [
        'Don replied to your comment on "South Korea and the POWs"',
        "Zoë replied to your comment on “Ça va?”",
        "李小龙 commented on 北京的秋天",
        "🎉 party 🎉 at the end of an emoji-heavy subject 🎉🎉🎉",
        "a =?utf-8?q?looks_encoded?= word, sent as it reads",
        "under_score = equals ? question",
        "x" * 240,  # one word longer than a line
        " ".join(["word"] * 60),  # a long subject of short words
        "é" * 250,  # two bytes a character, 250 of them
    ],
)
def test_a_subject_reads_back_exactly_in_lines_of_76(subject: str) -> None:
    header = unstructured("Subject", subject)

    assert header.isascii()
    assert parsed(header, "Subject") == subject
    assert_short_lines(header)


def test_a_plain_subject_is_folded_at_spaces_and_stays_readable() -> None:
    subject = " ".join(["word"] * 40)

    header = unstructured("Subject", subject)

    assert b"=?" not in header
    assert len(lines(header)) > 1
    assert b"".join(lines(header)) == b"Subject: " + subject.encode()  # unfolded: as it was


def test_encoded_words_never_split_a_character() -> None:
    text = "a🎉é李" * 40

    words = encoded_words(text, first_room=30)

    assert len(words[0]) <= 30
    assert all(len(w) <= 75 for w in words)
    decoded = []
    for word in words:
        assert word.startswith("=?utf-8?q?")
        assert word.endswith("?=")
        payload = word[len("=?utf-8?q?") : -2].replace("_", " ")
        # Each word decodes on its own: no character's bytes straddle two words.
        decoded.append(bytes.fromhex("".join(_q_hex(payload))).decode("utf-8"))
    assert "".join(decoded) == text


def _q_hex(payload: str) -> list[str]:
    out, i = [], 0
    while i < len(payload):
        if payload[i] == "=":
            out.append(payload[i + 1 : i + 3])
            i += 3
        else:
            out.append(payload[i].encode().hex())
            i += 1
    return out


def test_any_text_reads_back_exactly() -> None:
    alphabet = list("abcXYZ019 \"'()<>@,;:\\.[]=?_-*!/") + list("éüßçñ“”…—€李小龙🎉😀")
    rng = random.Random(37)
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        subject = unstructured("Subject", text)
        assert parsed(subject, "Subject") == text, text
        assert_short_lines(subject)
        # Display names: "phrase" rules (RFC 2047 §5), stricter than a subject's.
        header = mailbox("To", text, "ann@example.com")
        assert display_name_per_rfc2047(header) == (text, "ann@example.com"), text


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("Ann Lee", b"To: Ann Lee <ann@example.com>\r\n"),
        ("O'Brien", b"To: O'Brien <ann@example.com>\r\n"),
        ("Dr. Who", b'To: "Dr. Who" <ann@example.com>\r\n'),
        ('Ann "The" Lee', b'To: "Ann \\"The\\" Lee" <ann@example.com>\r\n'),
        ("Lée", b"To: =?utf-8?q?L=C3=A9e?= <ann@example.com>\r\n"),
        ("", b"To: ann@example.com\r\n"),
    ],
)
def test_a_display_name_is_atoms_a_quoted_string_or_encoded_words(name: str, wire: bytes) -> None:
    header = mailbox("To", name, "ann@example.com")

    assert header == wire
    assert address(header) == (name, "ann@example.com")


def test_a_long_display_name_folds_before_the_address() -> None:
    name = "Ann " * 18 + "Lee"

    header = mailbox("To", name, "a-rather-long-mailbox-name@some-long-domain.example.com")

    assert_short_lines(header)
    assert address(header) == (name, "a-rather-long-mailbox-name@some-long-domain.example.com")


@pytest.mark.parametrize(
    "value",
    [
        "Don\r\nBcc: evil@example.com",
        "Don\nBcc: evil@example.com",
        "Don\rBcc: evil@example.com",
        "Don\x00",
        "Don\u2028Bcc: evil@example.com",
        "Don\x85Bcc: evil@example.com",
        "Don\tDon",
    ],
)
def test_a_line_break_or_control_character_is_refused_never_written(value: str) -> None:
    with pytest.raises(HeaderError):
        unstructured("Subject", value)
    with pytest.raises(HeaderError):
        mailbox("To", value, "ann@example.com")
    with pytest.raises(HeaderError):
        raw("List-Unsubscribe", value)


@pytest.mark.parametrize(
    "email",
    [
        "ann@example.com\r\nBcc: evil@example.com",
        "ann@example.com>, <evil@example.com",
        "ann example@example.com",
        "ann\u3000x@example.com",
        "ann@example.com@evil.example.com",
        "no-at-sign",
    ],
)
def test_an_address_must_be_one_address(email: str) -> None:
    with pytest.raises(HeaderError):
        mailbox("To", "Ann", email)


def test_an_internationalized_address_goes_in_as_utf8() -> None:
    header = mailbox("To", "Zoë", "zoë@exämple.org")

    assert header == "To: =?utf-8?q?Zo=C3=AB?= <zoë@exämple.org>\r\n".encode()
    message = message_from_string(header.decode("utf-8") + "\r\n", policy=policy.SMTPUTF8)
    assert address_of(message) == ("Zoë", "zoë@exämple.org")


def test_a_raw_value_goes_out_exactly_however_long() -> None:
    url = "<https://comments.example.org/v1/unsubscribe?token=" + "x" * 300 + ">"

    header = raw("List-Unsubscribe", url)

    assert header == f"List-Unsubscribe: {url}\r\n".encode()
    assert parsed(header, "List-Unsubscribe") == url
    with pytest.raises(HeaderError):
        raw("List-Unsubscribe", "x" * 1000)
    with pytest.raises(HeaderError):
        raw("Message-ID", "<é@example.org>")
