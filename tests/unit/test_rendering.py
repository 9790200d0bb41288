import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linkify_it import LinkifyIt

from shared.rendering import (
    _MARKDOWN,
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    ALLOWED_URL_SCHEMES,
    _Markdown,
    _prose,
    _token_text,
    plain_text,
    render_markdown,
)

REL = 'rel="nofollow ugc noopener noreferrer"'
EVENT_HANDLER = re.compile(r"<[^>]+\son\w+\s*=", re.IGNORECASE)


class _Elements(HTMLParser):
    """Every element in a fragment, as the browser would see it: (tag, {attr: value})."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def hrefs(html: str) -> list[str]:
    return [attrs["href"] for tag, attrs in elements(html) if tag == "a" and "href" in attrs]


def assert_within_allow_list(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, html
        extra = set(attrs) - ALLOWED_ATTRIBUTES.get(tag, set()) - {"rel"}
        assert not extra, html
        href = re.sub(r"[\x00-\x20]", "", attrs.get("href", "")).lower()
        scheme = re.match(r"([a-z][a-z0-9+.-]*):", href)
        assert scheme is None or scheme.group(1) in ALLOWED_URL_SCHEMES, html


def test_empty_and_blank_bodies_render_to_nothing() -> None:
    assert render_markdown("") == ""
    assert render_markdown("  \n\n ") == ""


def test_basic_markdown_renders() -> None:
    out = render_markdown("*soft* **loud** ~~wrong~~ `x = 1`")
    assert out == ("<p><em>soft</em> <strong>loud</strong> <s>wrong</s> <code>x = 1</code></p>")


def test_links_are_marked_nofollow_ugc_and_open_safely() -> None:
    out = render_markdown('See [the docs](https://example.com/a?b=1&c=2 "Docs").')
    assert out == (
        f'<p>See <a href="https://example.com/a?b=1&amp;c=2" title="Docs" {REL}>the docs</a>.</p>'
    )


def test_autolinks_and_mailto_links_work() -> None:
    out = render_markdown("<https://example.com> or [mail](mailto:ann@example.com)")
    assert hrefs(out) == ["https://example.com", "mailto:ann@example.com"]
    assert out.count(REL) == 2


def test_block_structure_survives() -> None:
    out = render_markdown("# Title\n\n> quoted\n\n- one\n- two\n\n1. first\n\n---\n\nend  \nline")
    assert [tag for tag, _ in elements(out)] == [
        "h1",
        "blockquote",
        "p",
        "ul",
        "li",
        "li",
        "ol",
        "li",
        "hr",
        "p",
        "br",
    ]


def test_code_blocks_keep_their_text_escaped() -> None:
    out = render_markdown('```python\nif a < b and c > d: print("<b>&</b>")\n```')
    assert out == (
        '<pre><code>if a &lt; b and c &gt; d: print("&lt;b&gt;&amp;&lt;/b&gt;")\n</code></pre>'
    )


def test_a_script_tag_is_shown_as_text_not_run() -> None:
    out = render_markdown("<script>alert(1)</script>")
    assert "<script" not in out.lower()
    assert out == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_a_javascript_link_is_not_a_link() -> None:
    out = render_markdown("[x](javascript:alert(1))")
    assert hrefs(out) == []
    assert "<a" not in out


def test_raw_img_with_onerror_is_escaped_text() -> None:
    out = render_markdown("<img src=x onerror=alert(1)>")
    assert "<img" not in out
    assert not EVENT_HANDLER.search(out)
    assert elements(out) == [("p", {})]


def test_raw_anchor_with_onclick_is_escaped_text() -> None:
    out = render_markdown('<a href="https://x" onclick="steal()">hi</a>')
    assert out.startswith("<p>&lt;a href=")
    # The URL inside the escaped text is linkified like any bare URL; nothing else is markup.
    assert elements(out) == [
        ("p", {}),
        ("a", {"href": "https://x", "rel": "nofollow ugc noopener noreferrer"}),
    ]


def test_bare_urls_become_safe_links() -> None:
    out = render_markdown("see https://example.com/a?b=1 and www.example.org, not javascript:x")
    assert elements(out) == [
        ("p", {}),
        ("a", {"href": "https://example.com/a?b=1", "rel": "nofollow ugc noopener noreferrer"}),
        ("a", {"href": "http://www.example.org", "rel": "nofollow ugc noopener noreferrer"}),
    ]


def test_data_urls_are_refused() -> None:
    out = render_markdown(
        "[a](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) "
        # markdown-it lets data:image links through; nh3's scheme allow-list removes the href.
        "[b](data:image/png;base64,iVBORw0KGgo=)"
    )
    assert "data:" not in "".join(hrefs(out))
    assert_within_allow_list(out)


def test_markdown_images_are_not_hot_linked() -> None:
    out = render_markdown("![a cat](https://x/y.png)")
    assert "<img" not in out
    assert out == f'<p>!<a href="https://x/y.png" {REL}>a cat</a></p>'


def test_a_hostile_link_title_cannot_break_out_of_the_attribute() -> None:
    out = render_markdown('[a](https://x "t\\" onmouseover=\\"alert(1)")')
    # The quote stays &quot; inside the title, so the handler is inert text in one attribute.
    assert elements(out) == [
        ("p", {}),
        (
            "a",
            {
                "href": "https://x",
                "title": 't" onmouseover="alert(1)',
                "rel": "nofollow ugc noopener noreferrer",
            },
        ),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        "<svg onload=alert(1)>",
        '"><script>alert(1)</script>',
        "<iframe src=javascript:alert(1)>",
        "[a](JaVaScRiPt:alert(1))",
        "[a](&#106;avascript:alert(1))",
        "[a](&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;:alert(1))",
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        "[a](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        "<body onload=alert(1)>",
        "<IMG SRC=\"javascript:alert('XSS');\">",
        "<style>@import 'http://evil/x.css';</style>",
        "<div style=\"background:url('javascript:alert(1)')\">x</div>",
        "<!--<script>alert(1)</script>-->",
        "<details open ontoggle=alert(1)>",
        '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">',
        "![x](javascript:alert(1))",
        "[a](<javascript:alert(1)>)",
        "[a][r]\n\n[r]: javascript:alert(1)",
    ],
)
def test_classic_xss_payloads_yield_no_active_markup(payload: str) -> None:
    out = render_markdown(payload)
    lowered = out.lower()
    assert "<script" not in lowered
    assert "<iframe" not in lowered
    assert "<svg" not in lowered
    assert "<img" not in lowered
    assert "<style" not in lowered
    assert not EVENT_HANDLER.search(out)
    # "javascript:" may survive as visible, escaped text; it must never be a link target.
    assert not any("script:" in re.sub(r"[\x00-\x20]", "", h).lower() for h in hrefs(out))
    assert_within_allow_list(out)


_PROSE = st.text(alphabet=st.sampled_from(list("abcXYZ019 \n,.;:?!'\"%$@/()=+-éü日")), max_size=80)


@settings(max_examples=3000, deadline=None)
@given(_PROSE)
def test_prose_read_from_the_shortcut_has_the_words_the_parser_reads(body: str) -> None:
    prose = _prose(body)
    if prose is not None:
        assert " ".join(prose.split()) == _token_text(body)


def test_everyday_prose_is_read_without_the_parser() -> None:
    body = "My grandfather was there in 1953.\nHe never spoke of it.\n\nThank you, Don!"
    assert _prose(body) is not None
    assert plain_text(body, 200) == (
        "My grandfather was there in 1953. He never spoke of it. Thank you, Don!"
    )


def test_plain_text_keeps_the_words_and_drops_the_markup() -> None:
    body = "Hello *world*, see [the docs](https://x.org/a_b) and `a_b`\n\n- one\n- **two**"
    assert plain_text(body, 200) == "Hello world, see the docs and a_b one two"


def test_plain_text_keeps_headings_quotes_and_code_as_words() -> None:
    body = "# Title\n\n> quoted _well_\n\n```\nx = 1\n```"
    assert plain_text(body, 200) == "Title quoted well x = 1"


def test_plain_text_is_text_not_markup() -> None:
    # Raw HTML stays the characters the author typed: an HTML template escapes them.
    assert plain_text("<b>hi</b> &amp; 1 < 2", 200) == "<b>hi</b> & 1 < 2"


def test_plain_text_is_bounded_with_an_ellipsis() -> None:
    long = "word " * 100
    cut = plain_text(f"**{long.strip()}**", 50)
    assert len(cut) == 50
    assert cut.endswith("…")
    assert "*" not in cut
    assert plain_text("short and *sweet*", 50) == "short and sweet"
    assert plain_text("plain   prose\nover lines", 50) == "plain prose over lines"


def test_a_protocol_relative_link_is_left_to_the_parser() -> None:
    # Found by Hypothesis: linkify turns `//host` into a link, so prose holding one is not plain.
    assert _prose("see //0.0") is None
    assert 'href="//0.0"' in render_markdown("see //0.0")


# --- the quick linkify test agrees with linkify-it's own --------------------------------------

_STOCK_LINKIFY = LinkifyIt()
_STOCK_MARKDOWN = (
    _Markdown("commonmark", {"html": False, "linkify": True, "typographer": False})
    .enable(["strikethrough", "linkify"])
    .disable("image")
)
_STOCK_MARKDOWN.linkify = _STOCK_LINKIFY
# Pieces of links and of what looks like them, in either case, with the Unicode letters that
# case-fold onto ASCII (Kelvin sign, long s, dotted I) and a few TLDs outside ASCII.
_LINK_PIECES = st.sampled_from(
    [
        "http",
        "HTTPS",
        "ftp",
        "mailto",
        ":",
        "//",
        "/",
        "@",
        ".",
        "..",
        "www",
        "WWW.",
        "localhost",
        "LOCALHOST",
        "example",
        "com",
        "org",
        "Com",
        "io",
        "xn--p1ai",
        "рф",
        "中国",
        "1",
        "127",
        "0.0",
        "\u212a",
        "\u017f",
        "\u0130",
        "_",
        "-",
        " ",
        "\n",
        "\t",
        "<",
        ">",
        "(",
        ")",
        "'",
        "\u3000",
        "\x00",
        "a",
        "é",
        "[x](",
        "*",
        "`",
        "\\",
        "&#58;",
        "&commat;",
    ]
)
_SOUP = st.lists(_LINK_PIECES | st.text(max_size=3), max_size=20).map("".join)
# Link-shaped text, so that many examples are links and many are near misses.
_SHAPED = st.tuples(
    _SOUP,
    st.sampled_from(["", "http://", "HTTPS://", "//", "mailto:", "ftp:", "me@", "x:"]),
    st.sampled_from(["", "www.", "WWW.", "a.", "localhost", "\u017fub."]),
    st.sampled_from(["example", "ex-ample", "1", "\u212aelvin", "пример", "_x"]),
    st.sampled_from([".com", ".io", ".c", ".рф", ".xn--p1ai", ".1.2.3", ".Com", "", ".", "..org"]),
    st.sampled_from(["", "/", "/a?b=1", ":8080", ")", ".", ",", "_"]),
    _SOUP,
).map("".join)
_LINKISH = _SOUP | _SHAPED


@settings(max_examples=3000)
@given(_LINKISH)
def test_quick_linkify_answers_as_linkify_it_does(text: str) -> None:
    quick = _MARKDOWN.linkify
    assert quick is not None
    assert quick.pretest(text) == _STOCK_LINKIFY.pretest(text)
    assert quick.test(text) == _STOCK_LINKIFY.test(text)


@settings(max_examples=1500)
@given(_LINKISH)
def test_markdown_renders_as_with_stock_linkify(body: str) -> None:
    assert _MARKDOWN.render(body) == _STOCK_MARKDOWN.render(body)


def test_quick_linkify_still_finds_every_kind_of_link() -> None:
    body = "see www.example.com, http://a.example/x, me@example.org or LOCALHOST:8000/y."
    out = render_markdown(body)
    assert hrefs(out) == ["http://www.example.com", "http://a.example/x", "mailto:me@example.org"]
    assert _MARKDOWN.render(body) == _STOCK_MARKDOWN.render(body)


@pytest.mark.parametrize(
    "body",
    ["xn--80ak6aa92e.com", "<http://xn--80ak6aa92e.com/>", "mail me@xn--80ak6aa92e.com"],
)
def test_a_punycode_host_reads_as_written_not_as_the_letters_it_imitates(body: str) -> None:
    out = render_markdown(body)
    assert len(hrefs(out)) == 1
    assert "xn--80ak6aa92e.com" in hrefs(out)[0]
    assert "xn--80ak6aa92e.com" in re.findall(r">([^<]*)</a>", out)[0]  # the link's text
    assert "\u0430" not in out  # Cyrillic a: what the host would be shown as


def test_a_host_written_in_its_own_letters_stays_so() -> None:
    out = render_markdown("http://bücher.de")
    assert hrefs(out) == ["http://xn--bcher-kva.de"]
    assert ">http://bücher.de</a>" in out
