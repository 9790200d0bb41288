"""People acting through the API for the moderation tests: readers, a moderator, an admin,
and staff; plus a look at the write side and the log."""

from json import dumps
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine

from shared.store import EventStore
from tests.integration.conftest import Auth

ROLES = {"mod": ["moderator"], "mod2": ["moderator"], "admin": ["admin"], "editor": ["staff"]}


class Site:
    def __init__(self, client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> None:
        self.client, self.auth, self.engine, self.store = client, auth, engine, store

    def as_(self, user: str) -> dict[str, str]:
        return self.auth(user, roles=ROLES.get(user))

    def call(self, method: str, url: str, user: str, json: Any = None) -> Response:
        """Non-ASCII goes out escaped (as JSON.stringify may send it), so a lone surrogate
        can be sent at all."""
        headers = self.as_(user)
        if json is None:
            response: Response = self.client.request(method, url, headers=headers)
            return response
        body = dumps(json).encode()
        headers["Content-Type"] = "application/json"
        return self.client.request(method, url, content=body, headers=headers)

    def post(
        self, user: str, body: str = "hello", parent: str | None = None, thread: str = "t1"
    ) -> Response:
        payload = {"body": body, "parent_id": parent}
        return self.call("POST", f"/v1/threads/{thread}/comments", user, payload)

    def posted(self, user: str, body: str = "hello", parent: str | None = None) -> dict[str, Any]:
        response = self.post(user, body, parent)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def settings(self, by: str = "admin", **fields: Any) -> Response:
        return self.call("PUT", "/v1/moderation/settings", by, fields)

    def flag(self, comment_id: str, user: str, reason: str = "spam", **more: Any) -> Response:
        return self.call(
            "POST", f"/v1/comments/{comment_id}/flags", user, {"reason": reason, **more}
        )

    def decide(self, comment_id: str, action: str, by: str = "mod", **body: Any) -> Response:
        return self.call("POST", f"/v1/comments/{comment_id}/{action}", by, body or None)

    def status(self, comment_id: str) -> str:
        return str(self.one("SELECT status FROM comment_state WHERE comment_id = :c", c=comment_id))

    def one(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def types(self, stream: str = "t1") -> list[str]:
        return [e.type for e in self.store.read_stream(stream)]


def refused(response: Response, status: int, code: str) -> bool:
    return response.status_code == status and response.json()["error"]["code"] == code
