"""Everyday comment markdown rendered without the parser, to exactly what the parser renders.

Most comments are paragraphs of prose with a few line breaks, some `*emphasis*` and
`**strong**`, an inline `code` span, a link or two, perhaps a quote of the comment they
answer; the importers write bodies in that shape too
(`services/worker/imports/html_markdown.py`). markdown-it spends ~100 µs on such
a body; this module reads it in one pass of one regular expression and writes the HTML
that markdown-it and nh3 would have written (`shared.rendering`).

It accepts a deliberately small grammar and answers None for anything outside it, so the
caller renders those through markdown-it and nh3. Whatever it returns must equal
`_parse_and_clean(body)` exactly; tests/unit/test_markdown_shortcut.py checks that on
generated bodies built from the grammar's pieces and its near misses.

The grammar, and why each limit:
- Paragraphs are separated by one blank line. No line starts or ends with a space (indented
  code, hard breaks by spaces) or starts a block: `#`, `>`, `-`, `+`, `=`, `_`, `~`, a
  lone `*`, a fence, or digits followed by `.` or `)`.
- A block quote is such paragraphs with every line opening with `>` (or `> `), and blank
  quoted lines between them; nothing nests in it.
- Text is any character but markdown's specials, controls, and whitespace other than the
  space (the parser strips those at line edges; nh3 writes U+00A0 as `&nbsp;`). `&` is text
  unless it may start an entity.
- `\\` before ASCII punctuation is that character; `\\` at the end of a line is a hard break.
- A code span is one backtick each side around text with no edge spaces.
- `*em*` and `**strong**` hold text only, open after a space or a line start and before a
  letter or digit, and close after a letter or digit before a space, the line end or
  `.,;:!?)"'`: so each delimiter can only open or only close, and pairs as written.
- A link is `[text](<destination>)` or `[text](destination)`, the destination an http(s)
  URL on an ordinary host or a `mailto:` address once markdown-it has normalised it.
- Text that linkify-it would turn into a link (or that holds `://`) is left to the parser.
"""

import re
from collections.abc import Callable
from typing import Final

# Never in the grammar: controls, C1 and U+00A0, whitespace but the space, lone surrogates.
_ODD: Final = r"\x00-\x1f\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ud800-\udfff"
_TEXT_CHAR: Final = rf"[^\\`*_\[\]~<&\n{_ODD}]"  # nor markdown's inline specials
_CODE_CHAR: Final = rf"[^`\n{_ODD}]"
# `&` that cannot start an entity, and `<` that cannot start an autolink.
_AMPERSAND: Final = r"&(?!#?[A-Za-z0-9]+;)|<(?![A-Za-z])"
_ESCAPE: Final = r"\\[!-/:-@\[-`{-~]"
# Emphasis: text and escapes, from a letter or digit to a letter or digit.
_INNER: Final = rf"(?=[^\W_])(?:{_TEXT_CHAR}|{_AMPERSAND}|{_ESCAPE})+(?<=[^\W_])"
_OPENS: Final = r"(?<![^ \n])"  # after a space, a line break or the paragraph's start
_CLOSES: Final = r"(?=[ \n.,;:!?)\"']|\Z)"
_ANGLED: Final = rf"(?:[^<>\n\\&]|{_AMPERSAND})+"
_BARE: Final = rf"(?:[^\x00-\x20()<>\\&\x7f]|{_AMPERSAND})+"

_TOKEN = re.compile(
    rf"(?P<text>(?:{_TEXT_CHAR}|{_AMPERSAND})+)"
    r"|\\(?P<escaped>[!-/:-@\[-`{-~])"
    r"|(?P<hard_break>\\\n)"
    r"|(?P<soft_break>\n)"
    rf"|(?<!`)`(?P<code>(?! ){_CODE_CHAR}+(?<! ))`(?!`)"
    rf"|{_OPENS}\*\*(?P<strong>{_INNER})\*\*{_CLOSES}"
    rf"|{_OPENS}\*(?P<em>{_INNER})\*{_CLOSES}"
    rf"|\[(?P<label>(?:{_TEXT_CHAR}|{_AMPERSAND}|{_ESCAPE})+)\]"
    rf"\((?:<(?P<angled>{_ANGLED})>|(?P<bare>{_BARE}))\)"
)
_INNER_PIECE = re.compile(rf"(?P<text>(?:{_TEXT_CHAR}|{_AMPERSAND})+)|\\(?P<escaped>.)")
_BLOCK_START = re.compile(r"^(?:[ #>+=_~-]|\*(?: |$|\*(?:[ *]|$))|\d+[.)]|```)| $", re.MULTILINE)
# Hosts the WHATWG URL parser (nh3 asks it) reads as written: letters, digits and hyphens
# in labels, the last one beginning with a letter (not an IPv4 address), no punycode.
_HREF = re.compile(
    r"https?://(?!(?:[^/?#]*\.)?(?i:xn--))(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*"
    r"(?:[/?#][A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*)?"
    r"|mailto:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+"
)
_HTML_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_REL: Final = 'rel="nofollow ugc noopener noreferrer"'


class Shortcut:
    """Renders what it can; `render` answers None for everything else."""

    def __init__(
        self,
        links: Callable[[str], bool],
        normalize_link: Callable[[str], str],
        validate_link: Callable[[str], bool],
    ) -> None:
        self._links = links  # would linkify-it find a link in this text?
        self._normalize_link = normalize_link
        self._validate_link = validate_link

    def render(self, body: str) -> str | None:
        body = body.lstrip("\n").rstrip(" \n")
        if not body:
            return ""
        out = []
        for chunk in body.split("\n\n"):
            html = self._quote(chunk) if chunk.startswith(">") else self._paragraph(chunk)
            if html is None:
                return None
            out.append(html)
        return "\n".join(out)

    def _paragraph(self, chunk: str) -> str | None:
        if not chunk or chunk[0] == "\n" or chunk[-1] == "\n" or _BLOCK_START.search(chunk):
            return None  # more than one blank line, or a block of another kind
        inline = self._inline(chunk)
        return None if inline is None else f"<p>{inline}</p>"

    def _quote(self, chunk: str) -> str | None:
        """Paragraphs quoted line by line (`> `); a line without its `>` continues the
        quote lazily, and a quote in a quote nests: both are left to the parser."""
        lines = chunk.split("\n")
        if not all(line.startswith(">") for line in lines):
            return None
        inner = "\n".join(line[2:] if line.startswith("> ") else line[1:] for line in lines)
        paragraphs = []
        for paragraph in inner.split("\n\n"):
            html = self._paragraph(paragraph)
            if html is None:
                return None
            paragraphs.append(html)
        return "<blockquote>\n" + "\n".join(paragraphs) + "\n</blockquote>"

    def _inline(self, paragraph: str) -> str | None:
        parts: list[str] = []
        run: list[str] = []  # the text since the last token that is not text (linkify's unit)
        at = 0
        for token in _TOKEN.finditer(paragraph):
            if token.start() != at:
                return None
            at = token.end()
            kind, value = token.lastgroup, token.group(token.lastgroup or 0)
            if kind == "text" or kind == "escaped":
                run.append(value)
                parts.append(value.translate(_HTML_ESCAPES))
                continue
            if run and not self._plain(run):
                return None
            run = []
            if kind == "hard_break":
                parts.append("<br>\n")
            elif kind == "soft_break":
                parts.append("\n")
            elif kind == "code":
                parts.append(f"<code>{value.translate(_HTML_ESCAPES)}</code>")
            elif kind == "strong" or kind == "em":
                pieces = _pieces(value)
                if not self._plain(pieces):
                    return None
                parts.append(f"<{kind}>{''.join(pieces).translate(_HTML_ESCAPES)}</{kind}>")
            else:  # a link: `value` is its destination, angled or bare
                link = self._link(token.group("label"), value)
                if link is None:
                    return None
                parts.append(link)
        if at != len(paragraph) or (run and not self._plain(run)):
            return None
        return "".join(parts)

    def _plain(self, run: list[str]) -> bool:
        """No link in a run of text. markdown-it's linkify sees the text between two
        escapes as a token of its own; asking the pieces and the whole covers both."""
        whole = "".join(run)
        if "://" in whole or self._links(whole):
            return False
        return len(run) == 1 or not any(self._links(piece) for piece in run)

    def _link(self, label: str, destination: str) -> str | None:
        href = self._normalize_link(destination)
        if not self._validate_link(href) or not _HREF.fullmatch(href):
            return None
        # No linkify check: linkify leaves a link's own text alone.
        text = "".join(_pieces(label)).translate(_HTML_ESCAPES)
        return f'<a href="{href.replace("&", "&amp;")}" {_REL}>{text}</a>'


def _pieces(inner: str) -> list[str]:
    """Emphasis or a link's text as its pieces: runs of text, and escaped characters."""
    return [m.group("text") or m.group("escaped") for m in _INNER_PIECE.finditer(inner)]
