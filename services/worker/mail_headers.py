"""Header fields as bytes on the wire: RFC 5322 folding and RFC 2047 encoded words.

What Python's `email` package does for our few headers, at a fraction of its cost (its
header registry parses, then refolds, every value it is given: most of the mailer's CPU).

- `unstructured("Subject", text)`: plain words folded at spaces when the text is printable
  ASCII in single-spaced words of sane length; otherwise the whole text as UTF-8 "Q"
  encoded words (RFC 2047), split only between characters, never inside one.
- `mailbox("To", name, address)`: `name <address>`, the name as atoms, a quoted string or
  encoded words (the "phrase" rules of RFC 2047 §5, the strictest). An internationalized
  address goes in as UTF-8 (RFC 6532): such a message needs a server that takes SMTPUTF8
  (`mail_wire.MailMessage.smtputf8`).
- `raw(name, value)`: a value sent exactly as given, unfolded (Message-ID, a
  List-Unsubscribe URL that an encoded word would break).

Every line is at most 76 characters where it can be (a word too long to fold aside), and
never 998. A value holding a control character (CR, LF, NUL...) is refused with
`HeaderError`, never written: callers clean user text first (`email_messages.header_text`),
so a refusal here means a bug, not a name, and no value can end its header early.
"""

import re

MAX_LINE = 76  # RFC 2047 §2: a line holding encoded words; also under RFC 5322's 78
HARD_LIMIT = 998  # RFC 5322 §2.1.1
MAX_ENCODED_WORD = 75
_PREFIX = "=?utf-8?q?"
_SUFFIX = "?="
_OVERHEAD = len(_PREFIX) + len(_SUFFIX)
_LONGEST_PLAIN_WORD = 64

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# RFC 2047 §5 (3): the only characters a "Q" encoded word in a phrase may carry as is.
_Q_LITERAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
# RFC 5322 atext: a display name of such words needs no quoting.
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_ADDR_SPEC = re.compile(r"[^\s<>@]+@[^\s<>@]+")  # one "@", no space, no angle bracket


class HeaderError(ValueError):
    """A value that cannot go into a header as it is."""


def unstructured(name: str, text: str) -> bytes:
    """`Name: text` for free text (Subject)."""
    _refuse_controls(name, text)
    if _plain_words(text):
        return _fold(name, text.split(" "))
    return _fold(name, _encoded_first_line(name, text))


def mailbox(name: str, display_name: str, address: str) -> bytes:
    """`Name: display name <address>`, or `Name: address` without a display name."""
    _refuse_controls(name, display_name)
    _refuse_controls(name, address)
    if not _ADDR_SPEC.fullmatch(address):
        raise HeaderError(f"{name}: not one address")
    addr = f"<{address}>"
    if not display_name:
        return _fold(name, [address])
    words = display_name.split(" ")
    if _plain_words(display_name) and all(_ATOM.fullmatch(w) for w in words):
        return _fold(name, [*words, addr])
    quoted = '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if _PRINTABLE_ASCII.fullmatch(display_name) and len(name) + 2 + len(quoted) <= MAX_LINE:
        return _fold(name, [quoted, addr])
    return _fold(name, [*_encoded_first_line(name, display_name), addr])


def raw(name: str, value: str) -> bytes:
    """`Name: value`, exactly: for values that must not be folded or encoded."""
    _refuse_controls(name, value)
    if not value.isascii():
        raise HeaderError(f"{name}: a raw header must be ASCII")
    line = f"{name}: {value}"
    if len(line) > HARD_LIMIT:
        raise HeaderError(f"{name}: longer than a header line may be")
    return line.encode("ascii") + b"\r\n"


def encoded_words(text: str, first_room: int = MAX_ENCODED_WORD) -> list[str]:
    """`text` as "Q" encoded words, the first at most `first_room` characters long and the
    rest at most 75; a character's bytes always stay in one word."""
    words: list[str] = []
    room = max(first_room, _OVERHEAD + 9)  # one character of up to 3 escaped bytes
    current: list[str] = []
    length = _OVERHEAD
    for char in text:
        piece = _q(char)
        if current and length + len(piece) > room:
            words.append(_PREFIX + "".join(current) + _SUFFIX)
            current, length, room = [], _OVERHEAD, MAX_ENCODED_WORD
        current.append(piece)
        length += len(piece)
    if current or not words:
        words.append(_PREFIX + "".join(current) + _SUFFIX)
    return words


def _q(char: str) -> str:
    if char in _Q_LITERAL:
        return char
    if char == " ":
        return "_"
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


def _plain_words(text: str) -> bool:
    """Printable ASCII in single-spaced words that fold well, none looking encoded."""
    if not text or not _PRINTABLE_ASCII.fullmatch(text) or "=?" in text:
        return False
    words = text.split(" ")
    return all(0 < len(w) <= _LONGEST_PLAIN_WORD for w in words)


def _encoded_first_line(name: str, text: str) -> list[str]:
    """Encoded words, the first filling what the header's first line has left."""
    room = MAX_LINE - len(name) - 2  # "Name: "
    return encoded_words(text, min(room, MAX_ENCODED_WORD))


def _fold(name: str, tokens: list[str]) -> bytes:
    """Tokens joined by single spaces, a line broken (CRLF SP) before any token that
    would take its line past 76 characters."""
    lines: list[str] = []
    line = f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > MAX_LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    if any(len(each) > HARD_LIMIT for each in lines):
        raise HeaderError(f"{name}: a word longer than a header line may be")
    # UTF-8 only where an internationalized address put it (RFC 6532); all else is ASCII.
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _refuse_controls(name: str, value: str) -> None:
    if _CONTROL.search(value):
        raise HeaderError(f"{name}: a control character or line break in a header value")
