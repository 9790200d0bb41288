"""From a reply over HTTP to an email in the replied-to person's inbox, and one click out."""

from contextlib import AbstractContextManager

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.notification_tables import email_outbox
from shared.tokens import mint_token
from tests.e2e.conftest import HTTP_TIMEOUT, JWT_SECRET, Workers, free_port, running_api
from tests.smtp_sink import Inbox
from tests.waiting import wait_for


def mail_settled(engine: Engine) -> bool:
    """Every email the folds queued has been dealt with: none is pending or being sent."""
    with engine.connect() as conn:
        busy = conn.execute(
            sa.select(sa.func.count())
            .select_from(email_outbox)
            .where(email_outbox.c.status.in_(["pending", "sending"]))
        ).scalar_one()
    return busy == 0


def bearer(sub: str, name: str) -> dict[str, str]:
    token = mint_token(JWT_SECRET, sub=sub, name=name, email=f"{sub}@example.com")
    return {"Authorization": f"Bearer {token}"}


def test_a_reply_emails_the_parent_author_once_and_unsubscribe_stops_it(
    chorus_env: dict[str, str],
    workers: Workers,
    inbox: Inbox,
    engine: Engine,
) -> None:
    port = free_port()
    mail_env = {"CHORUS_SMTP_URL": inbox.smtp_url, "CHORUS_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    workers.env.update(mail_env)
    workers.start()
    api: AbstractContextManager[str] = running_api({**chorus_env, **mail_env}, port)
    with api as base, httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as http:
        admin = {
            "Authorization": "Bearer "
            + mint_token(JWT_SECRET, sub="editor", name="Editor", roles=["admin"])
        }
        http.put(
            "/v1/threads/pows",
            json={"title": "South Korea and the POWs", "url": "https://news.example/p/pows"},
            headers=admin,
        )
        top = http.post(
            "/v1/threads/pows/comments", json={"body": "Why?"}, headers=bearer("ann", "Ann")
        )
        reply = http.post(
            "/v1/threads/pows/comments",
            json={"body": "Because the armistice said so.", "parent_id": top.json()["id"]},
            headers=bearer("don", "Don"),
        ).json()

        wait_for(lambda: len(inbox.messages) >= 1, "the reply email")
        email = inbox.messages[0]
        inbox_page = http.get("/v1/me/notifications", headers=bearer("ann", "Ann")).json()

        unsubscribe_url = str(email["List-Unsubscribe"]).strip("<>")
        one_click = httpx.post(
            unsubscribe_url, content=b"List-Unsubscribe=One-Click", timeout=HTTP_TIMEOUT
        )
        preferences = http.get("/v1/me/preferences", headers=bearer("ann", "Ann")).json()
        again = http.post(
            "/v1/threads/pows/comments",
            json={"body": "And another thing", "parent_id": top.json()["id"]},
            headers=bearer("eve", "Eve"),
        ).json()
        wait_for(
            lambda: (
                http.get("/v1/me/notifications", headers=bearer("ann", "Ann")).json()[
                    "unread_count"
                ]
                == 2
            ),
            "ann's second notification",
        )
        # That fold queued its emails (Don's, and any wrong one to Ann) in its transaction:
        # once the mailer has dealt with every queued email, all of them have arrived.
        wait_for(lambda: mail_settled(engine), "the mailer to deal with every queued email")

    assert str(email["To"]) == "Ann <ann@example.com>"
    assert str(email["Subject"]) == 'Don replied to your comment on "South Korea and the POWs"'
    assert str(email["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    body = email.get_body(("plain",))
    assert body is not None
    assert "Because the armistice said so." in body.get_content()
    assert f"https://news.example/p/pows#comment-{reply['id']}" in body.get_content()
    assert [n["kind"] for n in inbox_page["notifications"]] == ["reply"]
    assert one_click.status_code == 200
    assert preferences["email_frequency"] == "off"
    assert again["version"] > reply["version"]
    to_ann = [m for m in inbox.messages if "ann@example.com" in str(m["To"])]
    assert len(to_ann) == 1  # exactly one email, and none after unsubscribing
    assert [str(m["To"]) for m in inbox.messages[1:]] == ["Don <don@example.com>"]
