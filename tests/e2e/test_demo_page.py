"""The demo publication page in headless Chromium: a reply lights up the other reader's bell.

Drives Debian's /usr/bin/chromium through Playwright (no `playwright install`).
"""

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import Workers, running_api

CHROMIUM = "/usr/bin/chromium"

if not Path(CHROMIUM).exists():
    if os.environ.get("CHORUS_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is missing: apt-get install chromium to run the demo page test",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

# Generous: Chromium, the API and a worker share two loaded cores. Only waits for what must
# appear reach it.
TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)


def sign_in(page: Page, base: str, user: str) -> None:
    page.goto(f"{base}/demo/")
    expect(page.locator("body[data-ready=true]")).to_be_attached(timeout=TIMEOUT_MS)
    page.get_by_test_id(f"signin-{user}").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(user.capitalize(), timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("bell")).to_be_visible(timeout=TIMEOUT_MS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_reply_on_the_demo_page_rings_the_parent_authors_bell(
    chorus_env: dict[str, str], workers: Workers, tmp_path: Path
) -> None:
    workers.start()
    with (
        running_api({**chorus_env, "CHORUS_DEMO_ENABLED": "true"}) as base,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            ann = browser.new_context(viewport={"width": 1100, "height": 1000}).new_page()
            sign_in(ann, base, "ann")
            expect(ann.get_by_test_id("comment-count")).to_have_text("0 Comments")
            ann.get_by_test_id("comment-body").fill("Were any of them ever *named*?")
            ann.get_by_test_id("comment-submit").click()
            # min_version: Ann's own comment shows at once, rendered from markdown.
            mine = ann.locator("li.comment").filter(has_text="Were any of them")
            expect(mine.locator("em")).to_have_text("named", timeout=TIMEOUT_MS)
            expect(ann.get_by_test_id("comment-count")).to_have_text("1 Comment")
            comment_id = (mine.first.get_attribute("data-testid") or "").removeprefix("comment-")
            assert comment_id
            expect(ann.get_by_test_id(f"edit-{comment_id}")).to_be_visible()
            expect(ann.get_by_test_id("bell-count")).to_have_text("0")

            bob = browser.new_context().new_page()  # a second reader, their own storage
            sign_in(bob, base, "bob")
            expect(bob.get_by_test_id(f"comment-{comment_id}")).to_be_visible(timeout=TIMEOUT_MS)
            expect(bob.get_by_test_id(f"edit-{comment_id}")).to_have_count(0)  # not Bob's
            bob.get_by_test_id(f"reply-{comment_id}").click()
            bob.get_by_test_id(f"reply-form-{comment_id}-body").fill("Some were, in 1994.")
            bob.get_by_test_id(f"reply-form-{comment_id}-submit").click()
            replies = bob.get_by_test_id(f"replies-{comment_id}")
            expect(replies).to_contain_text("Some were, in 1994.", timeout=TIMEOUT_MS)
            expect(bob.get_by_test_id("comment-count")).to_have_text("2 Comments")

            # Ann's bell (polled every ~2 s) rises to 1 once the worker has fanned out.
            expect(ann.get_by_test_id("bell-count")).to_have_text("1", timeout=TIMEOUT_MS)
            ann.get_by_test_id("bell").click()
            expect(ann.get_by_test_id("bell-list")).to_contain_text("Bob replied to you")
            expect(ann.get_by_test_id(f"replies-{comment_id}")).to_contain_text(
                "Some were, in 1994.", timeout=TIMEOUT_MS
            )
            ann.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
            ann.get_by_test_id("mark-all-read").click()
            expect(ann.get_by_test_id("bell-count")).to_have_text("0", timeout=TIMEOUT_MS)
        finally:
            browser.close()
