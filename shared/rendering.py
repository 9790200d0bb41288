"""Comment bodies: markdown in, sanitised HTML out, safe to embed in a publication's page.

Two layers, on purpose (defence in depth): markdown-it runs with `html=False`, so raw HTML
in a body is escaped to text and `javascript:`/`vbscript:`/`file:` links are refused; nh3
then enforces an explicit allow-list of tags, attributes and URL schemes on whatever
markdown-it produced, so a parser quirk or bug cannot smuggle markup through.

Everyday bodies skip both (`shared.markdown_shortcut`): a small grammar whose output is
within the same allow-list by construction (seven tags, escaped text, hrefs of a fixed
character set and scheme) and equal to what the two layers write, which tests check.
"""

import re
from typing import Final

import mdurl
import nh3
from linkify_it import LinkifyIt
from markdown_it import MarkdownIt

from shared.markdown_shortcut import Shortcut

# Everything linkify-it's `pretest` and `test` can match holds one of these: a scheme's
# ":" or "//", "www.", "localhost", "@", or a dot before a TLD or an IP address's digits
# (TLDs begin with a letter or digit). Its own patterns open with a large Unicode class
# tried at every position; this one finds most prose paragraphs link-free at a few µs.
_MAY_LINK = re.compile(r"[:@]|//|www\.|localhost|\.[^\W_]", re.IGNORECASE)


class _QuickLinkify(LinkifyIt):  # type: ignore[misc]
    """linkify-it with a necessary condition in front of its two tests, so the answers are
    the same (tests/unit/test_rendering.py checks it) and half the rendering time goes."""

    def pretest(self, text: str) -> bool:
        return _MAY_LINK.search(text) is not None and bool(super().pretest(text))

    def test(self, text: str) -> bool:
        return _MAY_LINK.search(text) is not None and bool(super().test(text))


class _Markdown(MarkdownIt):
    def normalizeLinkText(self, link: str) -> str:  # noqa: N802 (markdown-it's name)
        """The text of a bare or `<...>` link: markdown-it's own normalisation without its
        punycode step, which shows `xn--80ak6aa92e.com` in the Cyrillic letters that read
        "apple.com" while the link goes to the look-alike. Readers see the host as they
        wrote it, in letters that do not pass for another's."""
        parsed = mdurl.parse(link, slashes_denote_host=True)
        return mdurl.decode(mdurl.format(parsed), mdurl.DECODE_DEFAULT_CHARS + "%")


# Comments do not hot-link images: the image rule is off, so `![alt](url)` renders as a
# "!" followed by an ordinary link instead of vanishing (and nh3 drops any <img> anyway).
# Bare URLs (`https://...`, `www.example.com`) become links, as readers expect.
_MARKDOWN = (
    _Markdown("commonmark", {"html": False, "linkify": True, "typographer": False})
    .enable(["strikethrough", "linkify"])
    .disable("image")
)
_MARKDOWN.linkify = _QuickLinkify()

ALLOWED_TAGS: Final = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
}
ALLOWED_ATTRIBUTES: Final = {"a": {"href", "title"}}
ALLOWED_URL_SCHEMES: Final = {"http", "https", "mailto"}
LINK_REL: Final = "nofollow ugc noopener noreferrer"


# Everyday bodies (prose, breaks, emphasis, code, links) skip the parser, to the same HTML.
_SHORTCUT = Shortcut(_MARKDOWN.linkify.test, _MARKDOWN.normalizeLink, _MARKDOWN.validateLink)


def render_markdown(body: str) -> str:
    """Render a comment body to sanitised HTML; an empty body renders to ""."""
    quick = _SHORTCUT.render(body)
    if quick is not None:
        return quick
    return _parse_and_clean(body)


def _parse_and_clean(body: str) -> str:
    """The full path: markdown-it, then the nh3 allow-list."""
    return nh3.clean(
        _MARKDOWN.render(body),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    ).strip()


# Tokens after which the text a reader sees breaks (a paragraph, a list item, a line).
_BREAKS: Final = {"paragraph_close", "heading_close", "list_item_close", "blockquote_close", "hr"}


def plain_text(body: str, limit: int) -> str:
    """A comment body as the words a reader sees, on one line, at most `limit` characters
    (cut with an ellipsis): for notification excerpts and emails, where markup would show
    as asterisks and brackets. Read from markdown-it's token stream, the parser that renders
    the body, so emphasis, links and code lose their markup and keep their text."""
    prose = _prose(body)
    if prose is not None:
        return _cut(" ".join(prose.split()), limit)
    return _cut(_token_text(body), limit)


def _prose(body: str) -> str | None:
    """The text of a body the shortcut renders to paragraphs of plain text (no markup, no
    character HTML escapes), the tags taken out; None for anything else."""
    quick = _SHORTCUT.render(body)
    if quick is None or "&" in quick:
        return None
    text = quick.replace("<p>", " ").replace("</p>", " ")
    return None if "<" in text else text


def _token_text(body: str) -> str:
    """The words of markdown-it's token stream, on one line."""
    words: list[str] = []
    for token in _MARKDOWN.parse(body):
        if token.type in ("fence", "code_block"):
            words.append(token.content)
        elif token.type in _BREAKS:
            words.append(" ")
        for child in token.children or ():
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
    return " ".join("".join(words).split())


def _cut(flat: str, limit: int) -> str:
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
