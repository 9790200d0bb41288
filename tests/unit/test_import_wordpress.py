"""WordPress's WXR export into the import model, on exports from public importers' test data
(tests/fixtures/imports/README.md) and small odd cases."""

from pathlib import Path

import pytest

from services.worker.imports.model import (
    MalformedFile,
    SkippedComment,
    SkippedThread,
    SourceThread,
)
from services.worker.imports.wordpress import WordPressSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"


def read(path: Path) -> list[SourceThread | SkippedThread]:
    return list(WordPressSource(path).threads())


def refusal(path: Path) -> MalformedFile:
    with pytest.raises(MalformedFile) as caught:
        read(path)
    return caught.value


def comment(cid: str, **fields: str) -> str:
    values = {
        "comment_author": "Ann",
        "comment_author_email": "ann@example.org",
        "comment_date": "2020-01-02 04:04:05",
        "comment_date_gmt": "2020-01-02 03:04:05",
        "comment_content": f"Comment {cid}",
        "comment_approved": "1",
        "comment_type": "",
        "comment_parent": "0",
        "comment_user_id": "0",
    } | fields
    inner = "".join(f"<wp:{name}><![CDATA[{value}]]></wp:{name}>" for name, value in values.items())
    return f"<wp:comment><wp:comment_id>{cid}</wp:comment_id>{inner}</wp:comment>\n"


def export(tmp_path: Path, items: str, version: str = "1.2") -> Path:
    path = tmp_path / "export.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8" ?>\n<rss version="2.0"\n'
        f' xmlns:wp="http://wordpress.org/export/{version}/"\n'
        ' xmlns:other="http://example.org/other/">\n<channel>\n<title>Blog</title>\n'
        + items
        + "</channel>\n</rss>\n"
    )
    return path


def item(post_id: str, comments: str) -> str:
    return (
        f"<item><title>Post {post_id} &amp;amp; more</title>"
        f"<link>https://blog.example/?p={post_id}</link><wp:post_id>{post_id}</wp:post_id>"
        "<wp:post_date_gmt>2019-12-31 00:00:00</wp:post_date_gmt>"
        f"<wp:comment_status>open</wp:comment_status>\n{comments}</item>\n"
    )


def test_remark42_test_export() -> None:
    """WXR 1.2 as WordPress writes it (remark42's test data): an attachment without
    comments, an unapproved comment, a pingback with a reply to it, entities in content."""
    threads = read(FIXTURES / "wordpress-remark42.xml")
    assert threads[0] == SkippedThread("6", "no comments")
    post = threads[1]
    assert isinstance(post, SourceThread)
    assert (post.key, post.identifier, post.url, post.title) == (
        "100",
        None,
        "https://realmenweardress.es/2010/07/do-you-rp/",
        "Post with comments. One is not approved",
    )
    assert post.created_at is not None
    assert post.created_at.isoformat() == ("2010-07-19T14:24:22+00:00")
    assert [(c.key, c.parent_key) for c in post.comments] == [("8", None), ("14", "13")]
    assert post.skipped == [SkippedComment("9", "not approved"), SkippedComment("13", "pingback")]
    registered, guest = post.comments[1].author, post.comments[0].author
    assert registered.id.startswith("import:wordpress:u-")  # comment_user_id 2
    assert guest.id.startswith("import:wordpress:e-")
    assert guest.name == "SuperUser1"
    assert post.comments[0].posted_at.isoformat() == "2010-07-20T12:08:08+00:00"


def test_isso_test_export_repeats_a_comment_id_and_is_refused() -> None:
    """isso's hand-edited WXR 1.0 reuses comment id 11 in two posts; WordPress's ids are
    unique per site, and ours must be unique per file."""
    error = refusal(FIXTURES / "wordpress-isso.xml")
    assert (error.where, error.problem) == (
        "line 139 (<wp:comment> 11)",
        "the comment id repeats line 118's",
    )


def test_isso_test_export_with_the_repeat_mended(tmp_path: Path) -> None:
    text = (FIXTURES / "wordpress-isso.xml").read_text()
    last = text.rindex("<wp:comment_id>11</wp:comment_id>")
    path = tmp_path / "mended.xml"
    path.write_text(text[:last] + "<wp:comment_id>12</wp:comment_id>" + text[last + 33 :])
    first, second, third = read(path)
    assert isinstance(first, SourceThread)
    assert isinstance(second, SourceThread)
    assert (first.key, first.title) == ("18", "Hello, World…")
    assert [(c.key, c.parent_key) for c in first.comments] == [
        ("2", None),
        ("6", None),
        ("7", "6"),
        ("8", "7"),
        ("9", "7"),
        ("10", None),
        ("11", None),
    ]
    assert first.comments[0].body == "Erster!1"
    assert first.comments[5].body == (
        "When you have a comment with multiple lines:\\\nWordPress exports it like this."
    )
    # comment 7 has no <wp:comment_date>, only the GMT one; 10 has both, GMT wins.
    assert first.comments[5].posted_at.isoformat() == "2022-06-06T02:13:14+00:00"
    # No <wp:post_id>: the link is the key.
    assert (second.key, second.url) == ("http://example.tld/?p=4", "http://example.tld/?p=4")
    assert third == SkippedThread("http://example.tld/?p=6", "no comments")


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_every_wxr_version_reads_alike(tmp_path: Path, version: str) -> None:
    threads = read(export(tmp_path, item("1", comment("5") + comment("6")), version))
    assert [c.key for t in threads if isinstance(t, SourceThread) for c in t.comments] == [
        "5",
        "6",
    ]


def test_skips_say_why(tmp_path: Path) -> None:
    comments = (
        comment("1")
        + comment("2", comment_approved="0")
        + comment("3", comment_approved="spam")
        + comment("4", comment_approved="trash")
        + comment("5", comment_approved="post-trashed")
        + comment("6", comment_type="pingback")
        + comment("7", comment_type="trackback")
        + comment("8", comment_type="order_note")
        + comment("9", comment_type="comment", comment_content="  ")
        + comment("10", comment_parent="4")
    )
    (thread,) = read(export(tmp_path, item("1", comments)))
    assert isinstance(thread, SourceThread)
    assert [(c.key, c.parent_key) for c in thread.comments] == [("1", None), ("10", "4")]
    assert [(s.key, s.reason) for s in thread.skipped] == [
        ("2", "not approved"),
        ("3", "spam"),
        ("4", "trash"),
        ("5", "trash"),
        ("6", "pingback"),
        ("7", "trackback"),
        ("8", "type order_note"),
        ("9", "empty"),
    ]
    assert thread.title == "Post 1 & more"


def test_bodies_authors_and_dates(tmp_path: Path) -> None:
    comments = (
        comment(
            "1",
            comment_content=(
                'Hi *there*\nsecond line\n\n<a href="https://e.org">link</a> &amp; <b>b</b>'
            ),
        )
        + comment("2", comment_author="Wednesday &laquo; Reading", comment_author_email="")
        + comment("3", comment_author="", comment_author_email="")
        + comment("4", comment_date_gmt="0000-00-00 00:00:00")
        + comment("5", comment_author_email="ANN@EXAMPLE.ORG")
        + comment("6", comment_user_id="7")
    )
    (thread,) = read(export(tmp_path, item("1", comments)))
    assert isinstance(thread, SourceThread)
    one, two, three, four, five, six = thread.comments
    assert one.body == "Hi \\*there\\*\\\nsecond line\n\n[link](<https://e.org>) & **b**"
    assert two.author.name == "Wednesday « Reading"
    assert two.author.id.startswith("import:wordpress:n-")
    assert three.author.id == "import:wordpress:anonymous"
    assert four.posted_at.isoformat() == "2020-01-02T04:04:05+00:00"  # the local date
    assert five.author == one.author  # emails compare without case
    assert six.author.id.startswith("import:wordpress:u-")
    assert all("@" not in c.author.id for c in thread.comments)


def test_comments_of_another_namespace_are_not_wordpress_comments(tmp_path: Path) -> None:
    foreign = "<other:comment><other:comment_id>9</other:comment_id></other:comment>\n"
    (thread,) = read(export(tmp_path, item("1", comment("1") + foreign)))
    assert isinstance(thread, SourceThread)
    assert [c.key for c in thread.comments] == ["1"]


@pytest.mark.parametrize(
    ("items", "where", "problem"),
    [
        (
            item("1", comment("1", comment_date_gmt="yesterday")),
            "line 8 (<wp:comment> 1)",
            "<wp:comment_date_gmt> 'yesterday' is not a date and time",
        ),
        (
            item("1", comment("1", comment_date_gmt="", comment_date="")),
            "line 8 (<wp:comment> 1)",
            "it has no <wp:comment_date_gmt> nor <wp:comment_date>",
        ),
        (
            item("1", "<wp:comment><wp:comment_author>x</wp:comment_author></wp:comment>\n"),
            "line 8, column 1 (<wp:comment>)",
            "<wp:comment_id> is missing",
        ),
        (
            "<item><title>no id</title></item>\n",
            "line 7, column 1 (<item>)",
            "it has neither <wp:post_id> nor <link>",
        ),
        (item("1", comment("1")) + item("2", comment("1")), "line 11 (<wp:comment> 1)",
         "the comment id repeats line 8's"),
        ("<item><wp:post_id>1</item>\n", "line 7, column 22", "mismatched tag"),
    ],
)  # fmt: skip
def test_malformed_exports_are_refused_naming_the_place(
    tmp_path: Path, items: str, where: str, problem: str
) -> None:
    error = refusal(export(tmp_path, items))
    assert (error.where, error.problem) == (where, problem)


def test_an_undeclared_namespace_prefix_is_refused(tmp_path: Path) -> None:
    """remark42's second WXR test string has no namespace declarations at all."""
    path = tmp_path / "export.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<rss><channel><item>\n<wp:comment/></item></channel></rss>'
    )
    error = refusal(path)
    assert (error.where, error.problem) == ("line 3, column 1", "unbound prefix")
