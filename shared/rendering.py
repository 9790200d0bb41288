"""Comment bodies: markdown in, sanitised HTML out, safe to embed in a publication's page.

Two layers, on purpose (defence in depth): markdown-it runs with `html=False`, so raw HTML
in a body is escaped to text and `javascript:`/`vbscript:`/`file:` links are refused; nh3
then enforces an explicit allow-list of tags, attributes and URL schemes on whatever
markdown-it produced, so a parser quirk or bug cannot smuggle markup through.
"""

from typing import Final

import nh3
from markdown_it import MarkdownIt

# Comments do not hot-link images: the image rule is off, so `![alt](url)` renders as a
# "!" followed by an ordinary link instead of vanishing (and nh3 drops any <img> anyway).
_MARKDOWN = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("strikethrough")
    .disable("image")
)

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


def render_markdown(body: str) -> str:
    """Render a comment body to sanitised HTML; an empty body renders to ""."""
    html = _MARKDOWN.render(body)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    ).strip()
