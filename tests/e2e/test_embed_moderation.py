"""Moderation in the drop-in widget, in Chromium, against real API and worker processes.

A reply posted into a pre-moderated thread waits, shown only to its author ("Awaiting
moderation"); a moderator approves it from the widget's queue and it reaches the other
readers live, and its parent's author gets the bell and the email. A second moderator who
decides the same comment a moment later is told it was already decided. Readers' reports
reaching the threshold take a comment off the page and into the reported queue.
"""

import os
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from shared.tokens import mint_token
from tests.e2e.browser import CHROMIUM, TIMEOUT_MS
from tests.e2e.conftest import JWT_SECRET, Workers, running_api
from tests.e2e.test_embed_widget import THREAD, HostPage, host_page, shoot
from tests.ports import free_port
from tests.smtp_sink import Inbox
from tests.waiting import wait_for

expect.set_options(timeout=TIMEOUT_MS)
PEOPLE = {
    "ann": ("Ann Lee", []),
    "bob": ("Bob Kim", []),
    "cat": ("Cat Ng", []),
    "mia": ("Mia Park", ["moderator"]),
    "max": ("Max Roy", ["moderator"]),
    "editor": ("Editor", ["admin"]),
}
DESKTOP: dict[str, object] = {"viewport": {"width": 1000, "height": 900}}
PHONE: dict[str, object] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True}
SCREENSHOTS = os.environ.get("CHORUS_SCREENSHOTS")


@pytest.fixture
def publication(chorus_env: dict[str, str], workers: Workers, inbox: Inbox) -> Iterator[HostPage]:
    """The host page, its API (that origin allow-listed, mail on) and a worker folding."""
    port = free_port()
    mail = {"CHORUS_SMTP_URL": inbox.smtp_url, "CHORUS_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    workers.env.update(mail)
    workers.start()
    with host_page() as host:
        env = {**chorus_env, **mail, "CHORUS_CORS_ORIGINS": host.origin}
        with running_api(env, port) as api:
            host.api = api
            yield host


def token(user: str) -> str:
    name, roles = PEOPLE[user]
    return mint_token(
        JWT_SECRET,
        sub=user,
        name=name,
        email=f"{user}@example.com",
        roles=roles,
        ttl=timedelta(hours=1),
    )


def as_(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def open_as(browser: Browser, url: str, user: str | None, context: dict[str, object]) -> Page:
    page = browser.new_context(**context).new_page()  # type: ignore[arg-type]
    if user:
        page.add_init_script(f"window.readerToken = {token(user)!r};")
    page.goto(url)
    expect(page.locator("#chorus[data-chorus-ready=true]")).to_be_attached()
    return page


def comment(page: Page, text: str) -> Locator:
    return page.locator("#chorus article.comment").filter(has_text=text)


def fits(page: Page, width: int = 390) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for box in page.locator("#chorus button:visible").evaluate_all(
        "bs => bs.map(b => b.getBoundingClientRect().right)"
    ):
        assert box <= width, "a button is cut off"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_held_reply_is_approved_in_the_queue_and_reaches_readers_live(
    publication: HostPage, inbox: Inbox
) -> None:
    with httpx.Client(base_url=publication.api, timeout=30) as api:
        api.put(
            f"/v1/threads/{THREAD}", json={"title": "A hot story"}, headers=as_("editor")
        ).raise_for_status()
        api.post(
            f"/v1/threads/{THREAD}/comments",
            json={"body": "Who kept the lists of the men?"},
            headers=as_("bob"),
        ).raise_for_status()
        api.put(
            f"/v1/threads/{THREAD}", json={"moderation": "pre"}, headers=as_("editor")
        ).raise_for_status()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            ann = open_as(browser, publication.url, "ann", DESKTOP)
            comment(ann, "Who kept the lists").get_by_role("button", name="Reply").click()
            ann.locator("#chorus").get_by_role("textbox", name="Reply to Bob Kim…").fill(
                "The Red Cross kept some."
            )
            ann.locator("#chorus").get_by_role("button", name="Reply", exact=True).last.click()
            mine = comment(ann, "The Red Cross kept some.")
            expect(mine.locator(".tag")).to_have_text("Awaiting moderation")
            expect(mine.get_by_role("button", name="Edit")).to_be_visible()
            expect(ann.locator("#chorus h2")).to_have_text("1 Comment")

            cat = open_as(browser, publication.url, "cat", DESKTOP)
            expect(comment(cat, "Who kept the lists")).to_be_visible()
            expect(comment(cat, "The Red Cross")).to_have_count(0)
            expect(cat.locator("#chorus").get_by_role("button", name="Moderate")).to_be_hidden()
            bob = open_as(browser, publication.url, "bob", DESKTOP)
            expect(
                bob.locator("#chorus").get_by_role("button", name="Notifications")
            ).to_be_visible()

            # A second moderator, on a phone, opens the queue and starts banning the author.
            max_ = open_as(browser, publication.url, "max", PHONE)
            max_.locator("#chorus").get_by_role("button", name="Moderate").click()
            held = max_.locator("#chorus .qitem").filter(has_text="The Red Cross")
            expect(held).to_contain_text("Held: pre-moderation is on")
            held.get_by_role("button", name="Ban author").click()
            ban = max_.locator("#chorus").get_by_role("dialog", name="Ban Ann Lee")
            expect(ban).to_be_visible()
            fits(max_)
            shoot(max_, "moderation-phone.png")
            max_.keyboard.press("Escape")  # closes it, focus back on its button
            expect(ban).to_have_count(0)
            expect(held.get_by_role("button", name="Ban author")).to_be_focused()
            held.get_by_role("button", name="Ban author").click()  # left open: no refresh

            mia = open_as(browser, publication.url, "mia", DESKTOP)
            section = mia.locator("#chorus")
            section.get_by_role("button", name="Moderate, 1 waiting").click()
            expect(section.get_by_role("tab", name="Pending 1")).to_have_attribute(
                "aria-selected", "true"
            )
            item = section.locator(".qitem").filter(has_text="The Red Cross")
            expect(item).to_contain_text("In reply to Bob Kim: “Who kept the lists of the men?”")
            expect(item).to_contain_text("Held: pre-moderation is on")
            shoot(mia, "moderation-desktop.png")
            item.get_by_role("button", name="Approve").click()
            expect(section.get_by_role("status")).to_have_text("Approved: Ann Lee.")
            expect(section.get_by_text("Nothing here.")).to_be_visible()
            expect(section.get_by_role("tab", name="Pending 0")).to_be_visible()

            # The other moderator's decision comes second: told, and the queue refreshed.
            held.get_by_role("button", name="Approve").click()
            expect(max_.locator("#chorus").get_by_role("status")).to_have_text(
                "Already decided by another moderator."
            )
            expect(max_.locator("#chorus .qitem")).to_have_count(0)

            # Live: the other reader is offered it, the author's mark goes, the parent's
            # author is notified in the bell and by email.
            cat.locator("#chorus").get_by_role("button", name="Show 1 new comment").click()
            expect(comment(cat, "The Red Cross kept some.")).to_be_visible()
            expect(mine.locator(".tag")).to_have_count(0)
            expect(
                bob.locator("#chorus").get_by_role("button", name="Notifications, 1 unread")
            ).to_be_visible()
            wait_for(
                lambda: any("bob@example.com" in r for r in inbox.recipients),
                "the reply email to Bob",
            )
            assert not any("ann@example.com" in r for r in inbox.recipients)
        finally:
            browser.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reports_reaching_the_threshold_move_a_comment_to_the_reported_queue(
    publication: HostPage,
) -> None:
    with httpx.Client(base_url=publication.api, timeout=30) as api:
        api.put(
            "/v1/moderation/settings", json={"flag_threshold": 2}, headers=as_("editor")
        ).raise_for_status()
        api.post(
            f"/v1/threads/{THREAD}/comments",
            json={"body": "Please keep it civil."},
            headers=as_("mia"),
        ).raise_for_status()
        ad = api.post(
            f"/v1/threads/{THREAD}/comments",
            json={"body": "Cheap watches at example.com"},
            headers=as_("bob"),
        ).json()
        api.post(
            f"/v1/comments/{ad['id']}/flags", json={"reason": "abuse"}, headers=as_("ann")
        ).raise_for_status()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            cat = open_as(browser, publication.url, "cat", PHONE)
            expect(comment(cat, "Please keep it civil.").locator(".staff")).to_have_text("Staff")
            expect(
                comment(cat, "Please keep it civil.").get_by_role("button", name="Report")
            ).to_be_visible()
            theirs = comment(cat, "Cheap watches")
            theirs.get_by_role("button", name="Report").click()
            dialog = cat.locator("#chorus").get_by_role("dialog", name="Report this comment")
            cat.keyboard.press("Escape")
            expect(dialog).to_have_count(0)
            theirs.get_by_role("button", name="Report").click()
            dialog.get_by_role("radio", name="Spam").check()
            dialog.get_by_role("textbox", name="Note").fill("An advert")
            fits(cat)
            dialog.get_by_role("button", name="Send report").click()
            expect(theirs.get_by_role("button", name="Reported")).to_be_visible()

            # Held by the flags: gone for readers, counted no more.
            reader = open_as(browser, publication.url, None, PHONE)
            expect(reader.locator("#chorus h2")).to_have_text("1 Comment")
            expect(comment(reader, "Cheap watches")).to_have_count(0)
            expect(
                comment(reader, "Please keep it civil.").get_by_role("button", name="Report")
            ).to_have_count(0)

            mia = open_as(browser, publication.url, "mia", DESKTOP)
            section = mia.locator("#chorus")
            civil = comment(mia, "Please keep it civil.")
            civil.get_by_role("button", name="Feature").click()
            expect(civil.locator(".tag")).to_have_text("Featured")
            section.get_by_role("button", name="Moderate").click()
            section.get_by_role("tab", name="Reported 1").click()
            item = section.locator(".qitem").filter(has_text="Cheap watches")
            expect(item).to_contain_text("Held: reported by readers")
            expect(item).to_contain_text("1 spam")
            expect(item).to_contain_text("1 abuse")
            expect(item).to_contain_text("A new conversation")

            reader.locator("#chorus").get_by_role("combobox", name="Sort comments").select_option(
                "featured"
            )
            expect(comment(reader, "Please keep it civil.").locator(".tag")).to_have_text(
                "Featured"
            )
        finally:
            browser.close()
