"""The drop-in widget (/embed.js) on a publication's page of another origin, in Chromium.

The host page is served from a port of its own (another origin), allow-listed through
`CHORUS_CORS_ORIGINS`, and embeds the widget as docs/api.md tells a publication to. Two
readers in two browser contexts: one replies, the other sees "1 new comment" and their
bell rise, live, without losing a half-written comment.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from shared.tokens import mint_token
from tests.e2e.browser import CHROMIUM, TIMEOUT_MS
from tests.e2e.conftest import JWT_SECRET, Workers, running_api

expect.set_options(timeout=TIMEOUT_MS)
THREAD = "hot-story"
READERS = {"ann": "Ann Lee", "bob": "Bob Kim"}
# `CHORUS_SCREENSHOTS=docs/images` refreshes the README's pictures from this test.
SCREENSHOTS = os.environ.get("CHORUS_SCREENSHOTS")

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>A publication</title>
<style>
  /* The host page's own CSS, deliberately aggressive: none of it may reach the widget. */
  body { font-family: Georgia, serif; margin: 0 auto; max-width: 680px; padding: 16px; }
  button { background: red !important; font-size: 30px !important; }
  p, li { color: purple; }
</style></head>
<body>
  <h1>A hot story</h1><p>The article.</p>
  <div id="chorus" data-thread-id="{thread}" data-api="{api}"></div>
  <script>window.chorusToken = async () => window.readerToken || null;</script>
  <script src="{api}/embed.js" async></script>
</body></html>"""


@dataclass
class HostPage:
    """A publication's server on an origin of its own; it learns the API's address late."""

    server: ThreadingHTTPServer
    api: str = ""

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.origin}/story"


@contextmanager
def host_page() -> Iterator[HostPage]:
    host: HostPage

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = HOST_PAGE.replace("{api}", host.api).replace("{thread}", THREAD).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    host = HostPage(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    thread = threading.Thread(target=host.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        host.server.shutdown()
        host.server.server_close()
        thread.join()


@pytest.fixture
def publication(chorus_env: dict[str, str], workers: Workers) -> Iterator[HostPage]:
    """The host page, its API (that origin allow-listed) and a worker folding."""
    workers.start()
    with host_page() as host:
        allowed = {**chorus_env, "CHORUS_CORS_ORIGINS": host.origin}
        with running_api(allowed) as api:
            host.api = api
            yield host


def token(user: str) -> str:
    return mint_token(
        JWT_SECRET,
        sub=user,
        name=READERS[user],
        email=f"{user}@example.com",
        ttl=timedelta(hours=1),
    )


def seed(api: str, count: int) -> None:
    with httpx.Client(base_url=api, timeout=30) as client:
        for i in range(count):
            answer = client.post(
                f"/v1/threads/{THREAD}/comments",
                json={"body": f"Earlier comment number {i}."},
                headers={"Authorization": f"Bearer {token('bob')}"},
            )
            answer.raise_for_status()


def open_as(browser: Browser, url: str, user: str | None, **context: object) -> Page:
    page = browser.new_context(**context).new_page()  # type: ignore[arg-type]
    if user:
        page.add_init_script(f"window.readerToken = {token(user)!r};")
    page.goto(url)
    expect(page.locator("#chorus[data-chorus-ready=true]")).to_be_attached()
    return page


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name))


def comment(page: Page, text: str) -> Locator:
    return page.locator("#chorus article.comment").filter(has_text=text)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_readers_on_a_publication_of_another_origin(publication: HostPage) -> None:
    seed(publication.api, 52)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            ann = open_as(browser, publication.url, "ann", viewport={"width": 1000, "height": 900})
            section = ann.locator("#chorus")
            expect(section.get_by_role("heading", name="52 Comments")).to_be_visible()
            # Paging: every comment is reachable, none twice.
            for _ in range(2):
                section.get_by_role("button", name="Load more comments").click()
            expect(comment(ann, "Earlier comment number 51.")).to_be_visible()
            expect(section.locator("ol.comments > li")).to_have_count(52)
            expect(section.get_by_role("button", name="Load more comments")).to_be_hidden()
            # The host page's CSS stays outside: its red, 30px buttons are not ours.
            post_button = section.get_by_role("button", name="Post", exact=True)
            assert post_button.evaluate("b => getComputedStyle(b).fontSize") != "30px"

            area = section.get_by_role("textbox", name="Join the discussion…")
            area.fill("Were any of them ever *named*? https://example.com/" + "x" * 120)
            area.press("Control+Enter")
            mine = comment(ann, "Were any of them ever")
            expect(mine.locator("em")).to_have_text("named")  # at once, via min_version
            expect(mine.locator("a[href^='https://example.com/']")).to_be_visible()
            expect(section.get_by_role("heading", name="53 Comments")).to_be_visible()
            expect(section.locator("ol.comments > li").first).to_contain_text("Were any of them")

            # Bob follows a link to Ann's comment, the 53rd: it opens in place, in context.
            comment_id = mine.get_attribute("data-comment-id")
            bob = open_as(browser, f"{publication.url}#comment-{comment_id}", "bob")
            theirs = comment(bob, "Were any of them ever")
            expect(bob.locator("#chorus .context")).to_contain_text("Were any of them ever")
            expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)  # not Bob's
            theirs.get_by_role("button", name="Reply").click()
            reply_box = bob.locator("#chorus").get_by_role("textbox", name="Reply to Ann Lee…")
            reply_box.fill("Some were, in **1994**.")
            theirs.get_by_role("button", name="Reply", exact=True).last.click()
            expect(comment(bob, "Some were, in")).to_be_visible()

            # Ann, mid-way through another comment, is told live and loses nothing.
            area.fill("A half-written thought")
            expect(section.get_by_role("button", name="Show 1 new comment")).to_be_visible()
            expect(section.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
            section.get_by_role("button", name="Show 1 new comment").click()
            expect(comment(ann, "Some were, in")).to_be_visible()
            expect(area).to_have_value("A half-written thought")

            bell = section.get_by_role("button", name="Notifications, 1 unread")
            bell.click()
            expect(bell).to_have_attribute("aria-expanded", "true")
            note = section.get_by_role("button", name="Bob Kim replied to you")
            expect(note).to_contain_text("Some were, in 1994.")  # plain text, not markdown
            ann.keyboard.press("Escape")
            expect(bell).to_have_attribute("aria-expanded", "false")
            bell.click()
            note.click()
            expect(section.get_by_role("button", name="Notifications", exact=True)).to_be_visible()

            # Editing starts from the markdown Ann wrote; Cancel leaves it as it was.
            mine.get_by_role("button", name="Edit").click()
            editor = section.get_by_role("textbox", name="Edit your comment")
            expect(editor).to_have_value(
                "Were any of them ever *named*? https://example.com/" + "x" * 120
            )
            editor.fill("Were any of them ever **named**, then?")
            editor.press("Control+Enter")
            expect(mine.locator("strong")).to_have_text("named")
            expect(
                section.locator("article.comment").filter(has_text="Some were, in")
            ).to_be_visible()
            shoot(ann, "widget-desktop.png")
        finally:
            browser.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_a_phone_nothing_overflows_and_the_bell_fits(publication: HostPage) -> None:
    with httpx.Client(base_url=publication.api, timeout=30) as client:
        first = client.post(
            f"/v1/threads/{THREAD}/comments",
            json={"body": "A link: https://example.com/" + "y" * 300},
            headers={"Authorization": f"Bearer {token('ann')}"},
        ).json()
        client.post(
            f"/v1/threads/{THREAD}/comments",
            json={"body": "Replying to you", "parent_id": first["id"]},
            headers={"Authorization": f"Bearer {token('bob')}"},
        ).raise_for_status()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True}
            ann = open_as(browser, publication.url, "ann", **phone)
            expect(comment(ann, "Replying to you")).to_be_visible()
            assert ann.evaluate("document.documentElement.scrollWidth") <= 390
            bell = ann.locator("#chorus").get_by_role("button", name="Notifications, 1 unread")
            bell.click()
            menu = ann.locator("#chorus .bell-menu")
            expect(menu).to_be_visible()
            box = menu.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 390
            shoot(ann, "widget-phone.png")
        finally:
            browser.close()
