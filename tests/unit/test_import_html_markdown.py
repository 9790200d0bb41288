"""HTML from other tools into Chorus markdown: what the source showed, rendered by our own
renderer (shared.rendering), and nothing more."""

import html
import re
import time
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.worker.imports.html_markdown import (
    html_to_markdown,
    text_to_markdown,
    wordpress_to_markdown,
)
from shared.rendering import render_markdown


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read(rendered: str) -> _Reader:
    reader = _Reader()
    reader.feed(rendered)
    reader.close()
    return reader


def shown(rendered: str) -> str:
    """The words a reader sees, whitespace collapsed."""
    return " ".join("".join(read(rendered).text).split())


def tags(rendered: str) -> list[str]:
    return [tag for tag, _ in read(rendered).tags]


def hrefs(rendered: str) -> list[str | None]:
    return [attrs.get("href") for tag, attrs in read(rendered).tags if tag == "a"]


def test_paragraphs_breaks_and_emphasis_survive() -> None:
    md = html_to_markdown("<p>One <b>bold</b> and <i>it</i>,<br>next line.</p><p>Two</p>")
    assert md == "One **bold** and *it*,\\\nnext line.\n\nTwo"
    assert render_markdown(md) == (
        "<p>One <strong>bold</strong> and <em>it</em>,<br>\nnext line.</p>\n<p>Two</p>"
    )


def test_script_and_style_never_survive_nor_their_content() -> None:
    md = html_to_markdown(
        '<p>hi<script>alert("x")</script><style>p{}</style><img src=x onerror="alert(1)"></p>'
    )
    assert md == "hi"
    assert "script" not in render_markdown(md)


def test_text_that_looks_like_markup_stays_text() -> None:
    source = "&lt;script&gt;alert(1)&lt;/script&gt; *a* _b_ [c](d) `e` ~~f~~ \\ &amp;copy;"
    md = html_to_markdown(f"<p>{source}</p>")
    rendered = render_markdown(md)
    assert tags(rendered) == ["p"]
    assert shown(rendered) == html.unescape(source)


@pytest.mark.parametrize(
    "line", ["# not a heading", "- not a list", "+ nor this", "1. nor this", "> no quote", "==="]
)
def test_block_markers_at_line_starts_stay_text(line: str) -> None:
    rendered = render_markdown(html_to_markdown(f"<p>x<br>{line}</p><p>{line}</p>"))
    assert tags(rendered) == ["p", "br", "p"]
    assert shown(rendered) == f"x {line} {line}"


def test_entities_decode() -> None:
    md = html_to_markdown("<p>Tom &amp; Jerry &copy; &#8217; &quot;q&quot; &lt;b&gt;</p>")
    assert shown(render_markdown(md)) == 'Tom & Jerry © \u2019 "q" <b>'


def test_links_keep_http_https_and_mailto_hrefs_only() -> None:
    md = html_to_markdown(
        '<p><a href="https://example.com/a_(b)?c=1&amp;d=2" title="t">see [this]</a> '
        '<a href="http://x.org">x</a> <a href="mailto:ann@example.org">mail</a> '
        '<a href="javascript:alert(1)">js</a> <a href="/relative">rel</a> '
        '<a href="data:text/html,hi">data</a></p>'
    )
    rendered = render_markdown(md)
    assert hrefs(rendered) == [
        "https://example.com/a_(b)?c=1&d=2",
        "http://x.org",
        "mailto:ann@example.org",
    ]
    assert shown(rendered) == "see [this] x mail js rel data"


def test_a_link_without_text_shows_its_address() -> None:
    rendered = render_markdown(html_to_markdown('<a href="https://example.com/x"></a>'))
    assert hrefs(rendered) == ["https://example.com/x"]
    assert shown(rendered) == "https://example.com/x"


def test_quotes_lists_and_code_keep_their_structure() -> None:
    md = html_to_markdown(
        "<blockquote><p>quoted</p><p>twice</p></blockquote>"
        "<ul><li>one</li><li>two <em>2</em></li></ul><ol><li>first</li><li>second</li></ol>"
        "<pre><code>x = 1\n  y = `*2*`</code></pre><p>inline <code>a`b*c</code></p>"
    )
    rendered = render_markdown(md)
    assert tags(rendered) == [
        "blockquote", "p", "p", "ul", "li", "li", "em", "ol", "li", "li", "pre", "code", "p",
        "code",
    ]  # fmt: skip
    assert "x = 1\n  y = `*2*`" in rendered
    assert "<code>a`b*c</code>" in rendered


def test_disallowed_elements_keep_their_text() -> None:
    md = html_to_markdown("<div>block</div><table><tr><td>cell</td></tr></table><u>u</u>")
    assert shown(render_markdown(md)) == "block cellu"


def test_html_whitespace_is_collapsed_and_empty_bodies_are_empty() -> None:
    assert html_to_markdown("<p>  a \n\n  b  </p>") == "a b"
    assert html_to_markdown("<p> </p><br><p></p>") == ""
    assert html_to_markdown("") == ""
    assert html_to_markdown("\n   plain text\n  with lines ") == "plain text with lines"


def test_wordpress_newlines_are_paragraphs_and_breaks() -> None:
    md = wordpress_to_markdown("Row1\nRow2\n\nRow4 <b>bold</b> & 5 < 6\n\n<pre>a\n\nb</pre>")
    rendered = render_markdown(md)
    assert rendered.startswith("<p>Row1<br>\nRow2</p>\n<p>Row4 <strong>bold</strong> &amp; 5")
    assert "<pre><code>a\n\nb\n</code></pre>" in rendered


def test_wordpress_plain_text_keeps_its_characters() -> None:
    text = "I *really* think 2 * 3 = 6\n# and _this_\n\n- not a list"
    rendered = render_markdown(wordpress_to_markdown(text))
    assert tags(rendered) == ["p", "br", "p"]
    assert shown(rendered) == " ".join(text.split())


def test_text_to_markdown_keeps_lines() -> None:
    assert text_to_markdown("a\nb\n\n\nc") == "a\\\nb\n\nc"


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=80))
def test_any_text_in_html_renders_to_the_same_text(text: str) -> None:
    rendered = render_markdown(html_to_markdown(f"<p>{html.escape(text)}</p>"))
    assert shown(rendered) == " ".join(text.split())
    assert set(tags(rendered)) <= {"p", "a"}  # linkify may link a bare address


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<br>",
                "<b>",
                "</b>",
                "<i>",
                "</i>",
                "<a href='https://e.com'>",
                "</a>",
                "<script>",
                "</script>",
                "<ul><li>",
                "</li></ul>",
                "<blockquote>",
                "</blockquote>",
                "<pre>",
                "</pre>",
                "<code>",
                "</code>",
                "*",
                "_",
                "#",
                "1.",
                "-",
                "`",
                "[",
                "]",
                "(",
                ")",
                "&amp;",
                "&lt;",
                "<",
                ">",
                "\\",
                " ",
                "\n",
                "x",
                "javascript:alert(1)",
                "<a href='javascript:alert(1)'>",
                "<img src=x>",
            ]
        ),
        max_size=40,
    )
)
def test_any_html_renders_within_the_allow_list(parts: list[str]) -> None:
    rendered = render_markdown(html_to_markdown("".join(parts)))
    for tag, attrs in read(rendered).tags:
        assert tag in {"p", "br", "a", "em", "strong", "code", "pre", "blockquote", "ul", "ol",
                       "li"}  # fmt: skip
        if tag == "a":
            assert re.match(r"(https?:|mailto:)", attrs.get("href") or "")
    assert "<script" not in rendered


def test_conversion_is_fast_enough_for_a_million_comments() -> None:
    """Not a benchmark (decision 35 has the figures): a guard against a slow path."""
    body = (
        "<p>I think the <b>second</b> point is right, see "
        '<a href="https://example.com/a?b=1&amp;c=2">this</a>.<br>But not &amp; never the '
        "first.</p><p>Thanks for the episode!</p>"
    )
    started = time.process_time()
    for _ in range(2000):
        html_to_markdown(body)
    assert (time.process_time() - started) / 2000 < 0.002
