"""Comment bodies from other tools' HTML into Chorus markdown, text kept as text.

Disqus stores a comment as HTML; WordPress stores what the commenter typed (plain text whose
newlines WordPress turns into paragraphs and line breaks when it shows it, `wpautop`) with
some HTML in it. Chorus stores markdown and renders it itself (`shared.rendering`), so an
imported body must say in markdown what the source showed, and nothing more:

1. nh3 first cuts the HTML down to a small allow-list (paragraphs, line breaks, links,
   emphasis, code, quotes, lists), drops `<script>`/`<style>` with their content and every
   attribute but a link's `href`. What is left is well-formed (html5ever serialises it), so
   a small tree builder can read it.
2. The tree is written as markdown; the text in it is escaped, so a commenter's `*`, `_`,
   `[`, `#` or `<https://…>` stays the characters they typed instead of becoming markup.
   Entities are decoded (`&amp;` is `&`). Links keep their href only when it is
   http(s) or mailto; otherwise their text stays, unlinked.

Rendering the result goes through markdown-it and nh3 again, so even a bug here cannot
smuggle markup into a page: this module decides what the comment *says*, not what is safe.

A body with no `<` and no `&` is plain text and skips the HTML work (most comments).
"""

import html
import re
from dataclasses import dataclass, field
from typing import Final

import nh3

__all__ = ["html_to_markdown", "text_to_markdown", "wordpress_to_markdown"]

_TAGS: Final = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "br",
    "a",
    "em",
    "i",
    "strong",
    "b",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
}
_ATTRIBUTES: Final = {"a": {"href"}}
_URL_SCHEMES: Final = {"http", "https", "mailto"}
_KEPT_LINK = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)

_PARAGRAPH_LIKE: Final = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS: Final = _PARAGRAPH_LIKE | {"pre", "blockquote", "ul", "ol", "li"}

# Characters that are markup anywhere in a line, and what makes a line start a block.
_INLINE_SPECIAL = re.compile(r"[\\`*_\[\]~]|<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)")
_LINE_START_SPECIAL = re.compile(r"^([#>+=-]|\d{1,9}[.)])", re.MULTILINE)
_SPACE = re.compile(r"[ \t\n\r\f]+")
_SPACES = re.compile(" {2,}")
# Text from HTML: whitespace is a space (HTML's rule), C0 controls go (XML and markdown
# have no use for them; \x01 is our own break mark below).
_CONTROLS = (*range(9), 11, *range(14, 32), 127)
_HTML_TEXT = str.maketrans(
    {**dict.fromkeys("\t\n\r\x0c", " "), **dict.fromkeys(map(chr, _CONTROLS))}
)
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_HARD_BREAK: Final = "\\\n"
_BREAK: Final = "\x01"  # a <br> while a paragraph is built; text never holds it (_escape)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_to_markdown(text: str) -> str:
    """Plain text (Isso's markdown aside, a name, a title) as markdown that renders to the
    same characters: lines are kept (hard breaks), blank lines make paragraphs."""
    paragraphs = []
    for chunk in _BLANK_LINES.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        paragraph = _paragraph(_BREAK.join(_escape(line) for line in chunk.split("\n")))
        if paragraph:
            paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def html_to_markdown(html: str) -> str:
    """An HTML comment body (Disqus) as Chorus markdown; whitespace is HTML's (newlines in
    the source are spaces, `<p>` and `<br>` make paragraphs and breaks)."""
    if "<" not in html and "&" not in html:
        return _paragraph(_escape(_SPACE.sub(" ", html).strip()))
    return _Writer().blocks(_tree(html))


def wordpress_to_markdown(content: str) -> str:
    """A WordPress comment as Chorus markdown: WordPress shows blank lines as paragraphs
    and single newlines as line breaks (`wpautop`) around whatever HTML it allowed."""
    if "<" not in content and "&" not in content:
        return text_to_markdown(content)
    return html_to_markdown(_autop(content))


# --- wpautop, as far as comments need it ---------------------------------------------------

_PRE = re.compile(r"<pre[\s>].*?</pre>", re.IGNORECASE | re.DOTALL)
_OPENS_BLOCK = re.compile(r"\s*<(?:p|div|blockquote|ul|ol|pre|h[1-6])[\s>]", re.IGNORECASE)


def _autop(content: str) -> str:
    """Blank lines -> paragraphs, single newlines -> `<br>`, except in `<pre>` and in chunks
    that already start a block of their own (WordPress's rule too)."""
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _PRE.sub(hold, text)
    out = []
    for chunk in _BLANK_LINES.split(text):
        chunk = chunk.strip()
        if not chunk:
            continue
        if _OPENS_BLOCK.match(chunk) or chunk.startswith("\x00"):
            out.append(chunk)
        else:
            out.append("<p>" + chunk.replace("\n", "<br>\n") + "</p>")
    joined = "\n".join(out)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], joined)


# --- sanitised HTML -> tree ----------------------------------------------------------------


@dataclass(slots=True)
class _Element:
    tag: str
    href: str | None = None
    children: list["_Element | str"] = field(default_factory=list)


# nh3 (html5ever) writes tags in lower case, attributes double-quoted with `"` and `&`
# escaped inside, text with `&`, `<`, `>` escaped: so one pattern reads its output.
_TOKEN = re.compile(r'<(/?)([a-z0-9]+)((?:\s+[a-z-]+="[^"]*")*)\s*/?>|([^<]+)')
_HREF = re.compile(r'\shref="([^"]*)"')


def _build(clean: str) -> _Element:
    """The tree of nh3's output. Every end tag closes the element it names (a stray one,
    which nh3 never writes, is ignored)."""
    root = _Element("root")
    stack = [root]
    for match in _TOKEN.finditer(clean):
        closing, tag, attrs, text = match.groups()
        if text is not None:
            stack[-1].children.append(html.unescape(text) if "&" in text else text)
        elif tag == "br":
            stack[-1].children.append(_Element("br"))
        elif closing:
            for depth in range(len(stack) - 1, 0, -1):
                if stack[depth].tag == tag:
                    del stack[depth:]
                    break
        else:
            href = _HREF.search(attrs) if attrs else None
            element = _Element(tag, href=html.unescape(href.group(1)) if href else None)
            stack[-1].children.append(element)
            stack.append(element)
    return root


def _tree(html: str) -> _Element:
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
    return _build(clean)


# --- tree -> markdown ----------------------------------------------------------------------


class _Writer:
    def blocks(self, element: _Element) -> str:
        """The children of a block container, as markdown blocks separated by blank lines;
        runs of inline content between blocks are paragraphs."""
        out: list[str] = []
        run: list[_Element | str] = []
        for child in element.children:
            if isinstance(child, _Element) and child.tag in _BLOCKS:
                if run:
                    out.append(self._paragraph(run))
                    run = []
                out.append(self._block(child))
            else:
                run.append(child)
        if run:
            out.append(self._paragraph(run))
        return "\n\n".join(block for block in out if block)

    def _block(self, element: _Element) -> str:
        tag = element.tag
        if tag in _PARAGRAPH_LIKE:
            return self.blocks(element)
        if tag == "pre":
            return _fence(_all_text(element))
        if tag == "blockquote":
            inner = self.blocks(element)
            if not inner:
                return ""
            return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
        if tag in ("ul", "ol"):
            return self._list(element)
        return self.blocks(element)  # a stray <li>

    def _list(self, element: _Element) -> str:
        items = []
        number = 1
        for child in element.children:
            if isinstance(child, str):
                if child.strip():
                    items.append(
                        (
                            "- " if element.tag == "ul" else f"{number}. ",
                            _paragraph(_escape(_SPACE.sub(" ", child).strip())),
                        )
                    )
                    number += 1
                continue
            inner = self.blocks(child) if child.tag == "li" else self._block(child)
            if not inner:
                continue
            items.append(("- " if element.tag == "ul" else f"{number}. ", inner))
            number += 1
        lines = []
        for marker, inner in items:
            pad = " " * len(marker)
            first, *rest = inner.split("\n")
            lines.append(marker + first)
            lines.extend(pad + line if line else "" for line in rest)
        return "\n".join(lines)

    def _paragraph(self, run: list[_Element | str]) -> str:
        return _paragraph(self._inline(run))

    def _inline(self, run: list[_Element | str]) -> str:
        parts = []
        for child in run:
            if isinstance(child, str):
                text = child.translate(_HTML_TEXT)
                if _INLINE_SPECIAL.search(text):
                    text = _INLINE_SPECIAL.sub(r"\\\g<0>", text)
                parts.append(text)
            elif child.tag == "br":
                parts.append(_BREAK)
            elif child.tag in ("em", "i"):
                parts.append(_delimit("*", self._inline(child.children)))
            elif child.tag in ("strong", "b"):
                parts.append(_delimit("**", self._inline(child.children)))
            elif child.tag == "code":
                parts.append(_code_span(_all_text(child)))
            elif child.tag == "a":
                parts.append(self._link(child))
            else:
                parts.append(self._inline(child.children))
        return "".join(parts)

    def _link(self, element: _Element) -> str:
        text = self._inline(element.children).strip()
        href = (element.href or "").strip()
        if not _KEPT_LINK.match(href):
            return text
        if not text:
            text = _escape(href)
        destination = href.replace("<", "%3C").replace(">", "%3E").replace("\n", "")
        return f"[{text.replace(_BREAK, ' ')}](<{destination}>)"


def _paragraph(inline: str) -> str:
    """One paragraph: its lines (from `<br>`s) trimmed (edge spaces would indent a code
    block or make a break), empty ones dropped, block markers at line starts escaped."""
    if _BREAK in inline:
        lines = (_SPACES.sub(" ", line).strip(" \t") for line in inline.split(_BREAK))
        return _escape_line_starts(_HARD_BREAK.join(line for line in lines if line))
    line = _SPACES.sub(" ", inline).strip(" \t") if "  " in inline else inline.strip(" \t")
    return _escape_line_starts(line)


def _escape(text: str) -> str:
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    if not _INLINE_SPECIAL.search(text):
        return text
    return _INLINE_SPECIAL.sub(r"\\\g<0>", text)


def _escape_line_starts(text: str) -> str:
    if not _LINE_START_SPECIAL.search(text):
        return text
    return _LINE_START_SPECIAL.sub(_escape_marker, text)


def _escape_marker(match: re.Match[str]) -> str:
    marker = match.group(1)
    return marker[:-1] + "\\" + marker[-1]


def _delimit(mark: str, inner: str) -> str:
    """Emphasis that markdown will read as emphasis: delimiters hug the text (spaces move
    outside), and emphasis around nothing disappears."""
    edges = " " + _BREAK
    stripped = inner.strip(edges)
    if not stripped:
        return inner
    lead = inner[: len(inner) - len(inner.lstrip(edges))]
    trail = inner[len(inner.rstrip(edges)) :]
    return f"{lead}{mark}{stripped}{mark}{trail}"


def _all_text(element: _Element) -> str:
    parts: list[str] = []
    for child in element.children:
        if isinstance(child, str):
            parts.append(child)
        elif child.tag == "br":
            parts.append("\n")
        else:
            parts.append(_all_text(child))
    return "".join(parts)


def _code_span(code: str) -> str:
    code = _SPACE.sub(" ", code)
    if not code.strip():
        return _escape(code)
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{ticks}{pad}{code}{pad}{ticks}"


def _fence(code: str) -> str:
    code = code.strip("\n")
    if not code.strip():
        return ""
    longest = max((len(run) for run in re.findall(r"`{3,}", code)), default=2)
    ticks = "`" * (longest + 1)
    return f"{ticks}\n{code}\n{ticks}"
