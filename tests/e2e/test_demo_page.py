"""The demo publication page of `chorus dev` embeds the widget exactly as a publication
would (/embed.js), with the masthead playing the publication's own sign-in."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.browser import CHROMIUM, TIMEOUT_MS
from tests.e2e.conftest import Workers, running_api

expect.set_options(timeout=TIMEOUT_MS)


def sign_in(page: Page, user: str) -> None:
    page.get_by_test_id(f"signin-{user}").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(user.capitalize())
    expect(page.locator("#chorus").get_by_role("button", name="Notifications")).to_be_visible()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_demo_page_embeds_the_widget_and_signs_readers_in_and_out(
    chorus_env: dict[str, str], workers: Workers, tmp_path: Path
) -> None:
    workers.start()
    with (
        running_api({**chorus_env, "CHORUS_DEMO_ENABLED": "true"}) as base,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 1000}).new_page()
            page.goto(f"{base}/demo/")
            expect(page.locator("body[data-ready=true]")).to_be_attached()
            section = page.locator("#chorus")
            expect(page.locator("#chorus[data-chorus-ready=true]")).to_be_attached()
            expect(section.get_by_role("heading", name="0 Comments")).to_be_visible()
            expect(section.get_by_role("button", name="Notifications")).to_be_hidden()

            sign_in(page, "ann")
            area = section.get_by_role("textbox", name="Join the discussion…")
            area.fill("Were any of them ever *named*?")
            section.get_by_role("button", name="Post", exact=True).click()
            mine = section.locator("article.comment").filter(has_text="Were any of them")
            expect(mine.locator("em")).to_have_text("named")
            expect(section.get_by_role("heading", name="1 Comment")).to_be_visible()
            expect(mine.get_by_role("button", name="Edit")).to_be_visible()

            page.get_by_test_id("signout").click()
            expect(section.get_by_role("button", name="Notifications")).to_be_hidden()
            expect(mine.get_by_role("button", name="Edit")).to_have_count(0)
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        finally:
            browser.close()
