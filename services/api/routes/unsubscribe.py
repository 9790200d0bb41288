"""One-click unsubscribe (RFC 8058): the link in every notification email.

`POST` turns the person's emails off: mail clients send it, with any body, when the reader
presses "Unsubscribe". `GET` only shows a page with a button that POSTs, because link
scanners and previews follow GETs.
"""

from functools import cache
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool

from services.api.deps import ServicesDep
from services.api.openapi import errors
from shared.commands import Actor, ChangePreferences, RequestContext
from shared.db import read_connection
from shared.notification_tables import people
from shared.templating import template_environment
from shared.unsubscribe import MAX_TOKEN_CHARS, read_token

router = APIRouter(prefix="/v1", tags=["notifications"], responses=errors(404, 422, 503))

Token = Annotated[
    str,
    Query(min_length=1, max_length=MAX_TOKEN_CHARS, description="The token from the email"),
]


@router.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_page(token: Token, services: ServicesDep) -> HTMLResponse:
    """A page asking to confirm; changes nothing."""
    read_token(services.settings.jwt_secret, token)  # a forged link gets an error, not a form
    return HTMLResponse(_render("unsubscribe.html.j2", token=token))


@router.post("/unsubscribe", response_model=None)
async def unsubscribe(token: Token, request: Request, services: ServicesDep) -> Response:
    """Turn the token's owner's notification emails off (in-app notifications stay)."""
    user_id = read_token(services.settings.jwt_secret, token)
    ctx = RequestContext(
        actor=await run_in_threadpool(_actor, services, user_id),
        request_id=request.scope.get("state", {}).get("request_id"),
    )
    await services.bus.run(ChangePreferences(email_frequency="off"), ctx)
    if "text/html" in request.headers.get("accept", ""):  # our own page's button
        return HTMLResponse(_render("unsubscribed.html.j2"))
    return JSONResponse({"unsubscribed": True})


def _actor(services: ServicesDep, user_id: str) -> Actor:
    # The bus records who acted: keep the name and address Chorus already knows.
    with read_connection(services.engine) as conn:
        person = conn.execute(
            sa.select(people.c.name, people.c.email).where(people.c.user_id == user_id)
        ).first()
    if person is None:
        return Actor(id=user_id, name=user_id)
    return Actor(id=user_id, name=person.name, email=person.email)


def _render(template: str, **context: str) -> str:
    return _environment().get_template(template).render(context)


@cache
def _environment() -> Environment:
    return template_environment("services.api")
