"""The pages a person meets: the server's address, and the permalink page of a comment that
an email links to when its thread has no page of its own."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.api.app import create_app
from services.api.routes.demo import DEMO_THREAD
from services.worker.folding import fold_thread
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import LOOPBACK_PEER, Auth


def post(client: TestClient, auth: Auth, thread: str, body: str, **extra: object) -> str:
    user = str(extra.pop("user", "ann"))
    response = client.post(
        f"/v1/threads/{thread}/comments",
        json={"body": body, **extra},
        headers=auth(user, name=extra.pop("name", None)),
    )
    assert response.status_code == 201, response.text
    comment_id: str = response.json()["id"]
    return comment_id


@pytest.fixture
def demo_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings.model_copy(update={"demo_enabled": True})), client=LOOPBACK_PEER
    ) as client:
        yield client


def test_the_servers_address_points_at_the_docs(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in response.text
    assert "/demo/" not in response.text, "no demo unless it is enabled"


def test_with_the_demo_enabled_the_address_points_at_it_too(demo_client: TestClient) -> None:
    assert 'href="/demo/"' in demo_client.get("/").text


def test_a_comments_page_shows_it_after_what_it_answers(
    client: TestClient, auth: Auth, engine: Engine, store: EventStore
) -> None:
    top = post(client, auth, "t1", "Why *now*?", user="bob", name="<b>Bob</b>")
    middle = post(client, auth, "t1", "Because", parent_id=top)
    reply = post(client, auth, "t1", "Fair **point**", parent_id=middle, user="cat")
    fold_thread(engine, store, "t1")

    page = client.get(f"/c/{reply}")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.index("<p>Why <em>now</em>?</p>") < html.index("<p>Because</p>")
    assert html.index("<p>Because</p>") < html.index("<p>Fair <strong>point</strong></p>")
    assert "&lt;b&gt;Bob&lt;/b&gt;" in html, "names are escaped"
    assert "<b>Bob</b>" not in html
    assert f'id="comment-{reply}"' in html
    assert f"/v1/comments/{reply}/context" in html
    assert "in the thread</a>" not in html, "no registered url, no link to it"


def test_a_comments_page_links_to_the_threads_own_page(
    client: TestClient, auth: Auth, engine: Engine, store: EventStore
) -> None:
    admin = auth("editor", roles=["admin"])
    registered = client.put(
        "/v1/threads/t2",
        json={"title": 'Budget <"day">', "url": "https://news.example/p/budget#top"},
        headers=admin,
    )
    assert registered.status_code == 200, registered.text
    comment = post(client, auth, "t2", "On the budget")
    fold_thread(engine, store, "t2")

    html = client.get(f"/c/{comment}").text

    assert f'href="https://news.example/p/budget#comment-{comment}"' in html
    assert "Budget &lt;&#34;day&#34;&gt;" in html


def test_with_the_demo_enabled_a_demo_comment_links_to_the_demo_page(
    demo_client: TestClient, auth: Auth, engine: Engine, store: EventStore
) -> None:
    comment = post(demo_client, auth, DEMO_THREAD, "On the demo")
    fold_thread(engine, store, DEMO_THREAD)

    assert f'href="/demo/#comment-{comment}"' in demo_client.get(f"/c/{comment}").text


def test_an_unknown_comments_page_is_404(client: TestClient) -> None:
    assert client.get("/c/nope").status_code == 404
    assert client.get("/c/a.b").status_code == 422
