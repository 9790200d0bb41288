"""WordPress's export (WXR: RSS 2.0 with the `wp:` namespace, versions 1.0, 1.1 and 1.2).

What the format does, and what we do about it (decision 35):

- Every `<item>` (post, page, attachment, …) holds its own `<wp:comment>`s, so an item is
  a whole thread: items stream one at a time (`xml_records`), memory stays flat.
- Names are read without their namespace: WXR 1.0, 1.1 and 1.2 differ in the namespace URI
  (`http://wordpress.org/export/1.2/`), not in the elements we read. A `<comment>` from any
  other namespace is not WordPress's and is ignored.
- The thread's key is `<wp:post_id>` (else `<link>`); it has no identifier of the
  publication's own, so the engine derives the thread's id from `<link>`, the page's URL.
  Items without comments are skipped ("no comments").
- `<wp:comment_approved>`: `1` is imported; `0` ("not approved"), `spam` ("spam"), `trash`
  and `post-trashed` ("trash") are skipped. `<wp:comment_type>` `pingback`/`trackback` are
  skipped under that name, any other type but `comment` as "type <name>" (WooCommerce's
  private order notes are comments too).
- `<wp:comment_parent>` 0 is top level; a parent that was skipped or is missing is kept as
  a key and the engine makes the reply top level.
- `<wp:comment_date_gmt>` is UTC; WordPress writes `0000-00-00 00:00:00` when it has none,
  and then the local `<wp:comment_date>` is read as UTC (the export does not say the
  site's zone).
- `<wp:comment_content>` is what the commenter typed: plain text whose newlines WordPress
  shows as paragraphs and line breaks, plus some HTML (`html_markdown.wordpress_to_markdown`).
  Author names may hold HTML entities (`&laquo;`): decoded.
- Authors: `import:wordpress:u-…` from `<wp:comment_user_id>` when it is a registered user,
  else `e-…` from the email, else `n-…` from the name (`authors`): hashes only.
- Refused whole (`MalformedFile`, naming line and element): XML that is not well-formed, a
  comment without `<wp:comment_id>` or whose id repeats, a date that does not parse, an
  item with neither post id nor link.
"""

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from .authors import anonymous_id, author_id
from .html_markdown import wordpress_to_markdown
from .model import (
    MalformedFile,
    SkippedComment,
    SkippedThread,
    SourceAuthor,
    SourceComment,
    SourceName,
    SourceThread,
)
from .xml_records import Record, read_records

_RECORDS: Final = frozenset({("rss", "channel", "item")})
_WP_NAMESPACE: Final = "http://wordpress.org/export/"
_NO_DATE: Final = "0000-00-00 00:00:00"
_SKIPPED_APPROVAL: Final = {
    "0": "not approved",
    "spam": "spam",
    "trash": "trash",
    "post-trashed": "trash",
}


class WordPressSource:
    name: SourceName = "wordpress"

    def __init__(self, path: Path) -> None:
        self.path = path

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        seen: dict[str, int] = {}
        for item in read_records(self.path, _RECORDS, sub_record="comment", check_root=_root):
            yield _thread(item, seen)


def _root(namespace: str, local: str) -> None:
    if local != "rss":
        raise MalformedFile("line 1", f"the root element is <{local}>, not <rss>")


def _wp_time(value: str, where: str, what: str) -> datetime | None:
    """WordPress's `YYYY-MM-DD HH:MM:SS`, UTC; None for its "no date"."""
    if not value or value == _NO_DATE:
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise MalformedFile(where, f"{what} {value!r} is not a date and time") from None
    return parsed.replace(tzinfo=UTC)


def _thread(item: Record, seen: dict[str, int]) -> SourceThread | SkippedThread:
    key = item.text("post_id") or item.text("link")
    if not key:
        raise MalformedFile(f"{item.where} (<item>)", "it has neither <wp:post_id> nor <link>")
    comments: list[SourceComment] = []
    skipped: list[SkippedComment] = []
    for record in item.children:
        if not record.namespace.startswith(_WP_NAMESPACE):
            continue
        comment = _comment(record, seen)
        if isinstance(comment, SkippedComment):
            skipped.append(comment)
        else:
            comments.append(comment)
    if not comments and not skipped:
        return SkippedThread(key, "no comments")
    where = f"line {item.line} (<item> {key})"
    return SourceThread(
        key=key,
        identifier=None,
        url=item.text("link") or None,
        title=html.unescape(item.text("title")) or None,
        comments=comments,
        skipped=skipped,
        created_at=_wp_time(item.text("post_date_gmt"), where, "<wp:post_date_gmt>"),
        locked=item.text("comment_status") == "closed",
    )


def _comment(record: Record, seen: dict[str, int]) -> SourceComment | SkippedComment:
    key = record.text("comment_id")
    if not key:
        raise MalformedFile(f"{record.where} (<wp:comment>)", "<wp:comment_id> is missing")
    where = f"line {record.line} (<wp:comment> {key})"
    if key in seen:
        raise MalformedFile(where, f"the comment id repeats line {seen[key]}'s")
    seen[key] = record.line
    posted_at = _wp_time(
        record.text("comment_date_gmt"), where, "<wp:comment_date_gmt>"
    ) or _wp_time(record.text("comment_date"), where, "<wp:comment_date>")
    if posted_at is None:
        raise MalformedFile(where, "it has no <wp:comment_date_gmt> nor <wp:comment_date>")
    approved = record.text("comment_approved")
    if approved != "1":
        return SkippedComment(key, _SKIPPED_APPROVAL.get(approved, "not approved"))
    kind = record.text("comment_type")
    if kind in ("pingback", "trackback"):
        return SkippedComment(key, kind)
    if kind not in ("", "comment"):
        return SkippedComment(key, f"type {kind}")
    body = wordpress_to_markdown(record.text("comment_content"))
    if not body:
        return SkippedComment(key, "empty")
    parent = record.text("comment_parent")
    return SourceComment(
        key=key,
        parent_key=parent if parent and parent != "0" else None,
        author=_author(record),
        body=body,
        posted_at=posted_at,
    )


def _author(record: Record) -> SourceAuthor:
    name = html.unescape(record.text("comment_author"))
    user_id = record.text("comment_user_id")
    email = record.text("comment_author_email").lower()
    if user_id and user_id != "0":
        return SourceAuthor(author_id("wordpress", "u", user_id), name or "Anonymous")
    if email:
        return SourceAuthor(author_id("wordpress", "e", email), name or "Anonymous")
    if name:
        return SourceAuthor(author_id("wordpress", "n", name), name)
    return SourceAuthor(anonymous_id("wordpress"), "Anonymous")
