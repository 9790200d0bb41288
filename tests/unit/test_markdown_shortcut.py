"""The shortcut renders exactly what markdown-it and nh3 render, or leaves the body to them."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.worker.imports.html_markdown import html_to_markdown
from shared.rendering import _SHORTCUT, _parse_and_clean, _prose, _token_text, render_markdown

# What the grammar is made of, and what sits just outside it: every special character
# alone, entity and autolink starts, link-shaped text, odd whitespace, punycode and IP hosts.
_PIECES = st.sampled_from(
    [
        "word",
        "Ünïcødé",
        "日本",
        "42",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\n\n\n",
        "\\\n",
        " \\\n",
        "\\",
        "\\*",
        "\\[",
        "\\\\",
        "\\a",
        "*",
        "**",
        "***",
        "*em*",
        "**strong**",
        " *em* ",
        " **st rong** ",
        "*a\\*b*",
        "_",
        "__x__",
        "~",
        "~~x~~",
        "`",
        "``",
        "`code`",
        "` x `",
        "`a``b`",
        "`<&>`",
        "[",
        "]",
        "](",
        "[text](<https://example.com/a?b=1&c=2>)",
        "[text](https://example.com/x_(y))",
        "[t](<https://example.com/a b>)",
        "[t](<HTTPS://EXAMPLE.COM/>)",
        "[t](<http://1.2.3.4/>)",
        "[t](<http://xn--p1ai/>)",
        "[t](<http://пример.рф/>)",
        "[t](<http://a:99999/>)",
        "[t](<http://[::1]/>)",
        "[t](<javascript:alert(1)>)",
        "[t](</relative>)",
        "[t](<mailto:me@example.org>)",
        "[t](<https://e.com/&amp;>)",
        "[t](<x>)",
        "[t]: https://example.com",
        "![i](<https://example.com/i.png>)",
        "&",
        "&amp;",
        "&#58;",
        "&copy;",
        "&x",
        "<",
        "< ",
        "<a>",
        "<https://example.com>",
        ">",
        "> ",
        ">",
        ">>",
        "\n>",
        "\n> ",
        "\n>\n> ",
        "> > ",
        "#",
        "# ",
        "- ",
        "-",
        "+ ",
        "=",
        "===",
        "1. ",
        "1) ",
        "2020.",
        "    ",
        "\t",
        "\x00",
        "\x0c",
        "\r",
        "\r\n",
        "\u00a0",
        "\u2003",
        "\u3000",
        "\u0085",
        "\ufeff",
        "\u200b",
        ".",
        ",",
        ":",
        "!",
        "?",
        "'",
        '"',
        "(",
        ")",
        "/",
        "//",
        "://",
        "@",
        "example.com",
        "www.example.org",
        "http://example.com/x",
        "me@example.org",
        "localhost:8000",
        "a.b",
        "\u212aelvin.com",
    ]
)
_SOUP = st.lists(_PIECES | st.text(max_size=2), max_size=24).map("".join)


def _agrees(body: str) -> bool:
    """Whether the shortcut took the body; if it did, its HTML is the parser's."""
    quick = _SHORTCUT.render(body)
    if quick is None:
        return False
    assert quick == _parse_and_clean(body), body
    return True


@settings(max_examples=6000, deadline=None)
@given(_SOUP)
def test_the_shortcut_renders_exactly_what_the_parser_renders(body: str) -> None:
    _agrees(body)


@settings(max_examples=3000, deadline=None)
@given(_SOUP)
def test_prose_read_from_the_shortcut_has_the_words_the_parser_reads(body: str) -> None:
    prose = _prose(body)  # what notification excerpts take without the parser
    if prose is not None:
        assert " ".join(prose.split()) == _token_text(body)


# Well-formed bodies of the grammar's shapes, so that most examples take the shortcut.
_WORDS = st.sampled_from(["word", "Ünï", "42", "it's", '"quoted"', "a,", "b.", "(c)", "x?"])
_INLINE = st.one_of(
    _WORDS,
    _WORDS.map(lambda w: f"*{w.strip(',.?()')}*"),
    _WORDS.map(lambda w: f"**{w.strip(',.?()')}**"),
    _WORDS.map(lambda w: f"`{w}`"),
    _WORDS.map(lambda w: f"[{w}](<https://example.com/{w}?a=1&b=2>)"),
    _WORDS.map(lambda w: f"[{w}](mailto:{w}@example.org)"),
    st.sampled_from(["\\*", "\\_", "5 < 6", "a & b", "x > y", "e.g. this", "note: that"]),
)
_LINE = st.lists(_INLINE, min_size=1, max_size=8).map(" ".join)
_PARAGRAPH = st.lists(_LINE, min_size=1, max_size=3).flatmap(
    lambda lines: st.sampled_from(["\n", "\\\n"]).map(lambda br: br.join(lines))
)


def _quoted(paragraphs: list[str], mark: str) -> str:
    """Paragraphs as one block quote: every line marked, a marked blank line between."""
    lines = ("\n".join(mark + line for line in p.split("\n")) for p in paragraphs)
    return f"\n{mark.rstrip()}\n".join(lines)


_QUOTE = st.builds(
    _quoted, st.lists(_PARAGRAPH, min_size=1, max_size=2), st.sampled_from([">", "> "])
)
_BODY = st.lists(_PARAGRAPH | _QUOTE, min_size=1, max_size=3).map("\n\n".join)


@settings(max_examples=3000, deadline=None)
@given(_BODY)
def test_well_formed_bodies_render_as_the_parser_renders(body: str) -> None:
    _agrees(body)


# HTML as Disqus and WordPress hold it, through the importer's conversion.
_HTML_INLINE = st.one_of(
    _WORDS,
    _WORDS.map(lambda w: f"<b>{w}</b>"),
    _WORDS.map(lambda w: f"<i> {w}</i>"),
    _WORDS.map(lambda w: f"<code>{w}</code>"),
    _WORDS.map(lambda w: f'<a href="https://example.com/{w}?a=1&amp;b=2">{w}</a>'),
    _WORDS.map(lambda w: f'<a href="http://example.com/{w}">http://example.com/{w}</a>'),
    st.sampled_from(["&amp; 5 &lt; 6 *really*", "<br>", "1. not a list", "# not a head"]),
)
_HTML_PARAGRAPH = st.lists(_HTML_INLINE, min_size=1, max_size=8).map(
    lambda p: "<p>" + " ".join(p) + "</p>"
)
_HTML_QUOTE = st.lists(_HTML_PARAGRAPH, min_size=1, max_size=2).map(
    lambda ps: "<blockquote>" + "".join(ps) + "</blockquote>"
)
_HTML = st.lists(_HTML_PARAGRAPH | _HTML_QUOTE, min_size=1, max_size=3).map("".join)


@settings(max_examples=2000, deadline=None)
@given(_HTML)
def test_imported_bodies_render_as_the_parser_renders(html: str) -> None:
    _agrees(html_to_markdown(html))


@pytest.mark.parametrize(
    ("body", "html"),
    [
        ("Thank you, Don!\nSee you.", "<p>Thank you, Don!\nSee you.</p>"),
        ("one\\\ntwo\n\nthree", "<p>one<br>\ntwo</p>\n<p>three</p>"),
        ("an *aside* and **more**.", "<p>an <em>aside</em> and <strong>more</strong>.</p>"),
        ("run `make test` & 1 < 2", "<p>run <code>make test</code> &amp; 1 &lt; 2</p>"),
        (
            "> you said *this*\n>\n> and that\n\nI agree.",
            "<blockquote>\n<p>you said <em>this</em></p>\n<p>and that</p>\n</blockquote>\n"
            "<p>I agree.</p>",
        ),
        (
            "[the docs](<https://example.com/a?b=1&c=2>) \\*",
            '<p><a href="https://example.com/a?b=1&amp;c=2" '
            'rel="nofollow ugc noopener noreferrer">the docs</a> *</p>',
        ),
    ],
)
def test_everyday_bodies_take_the_shortcut(body: str, html: str) -> None:
    assert _SHORTCUT.render(body) == html
    assert _parse_and_clean(body) == html


@pytest.mark.parametrize(
    "body",
    [
        "    indented code",
        "- a list",
        "1. a list",
        "# a heading",
        "> > a quote in a quote",
        "> a quote\ncontinued lazily",
        "text\n> a quote that interrupts it",
        "see example.com",
        "see http://example.com",
        "a &amp; b",
        "<https://example.com>",
        "~~struck~~",
        "snake_case",
        "[t](<javascript:alert(1)>)",
        "[t](<http://1.2.3.4/>)",
        "one\n\n\nthree",
    ],
)
def test_what_the_grammar_leaves_out_goes_to_the_parser(body: str) -> None:
    assert _SHORTCUT.render(body) is None
    assert render_markdown(body) == _parse_and_clean(body)
