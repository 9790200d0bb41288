"""The demo publication page at `/demo/`, built only on the public API, and its sign-in.

DEVELOPMENT ONLY. `create_app` includes this router only when `CHORUS_DEMO_ENABLED=true`
(`chorus dev` sets it). `POST /demo/token` hands out bearer tokens for a fixed set of demo
readers to anyone who asks: never enable the demo in production.
"""

from datetime import timedelta
from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel

from services.api.deps import ServicesDep
from services.api.inputs import InputModel
from shared.tokens import mint_token

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_FILES = {
    "index.html": "text/html; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}

DEMO_THREAD = "demo-pows"
"""The thread the demo page shows (demo.js says the same)."""

DemoUserId = Literal["ann", "bob", "cat", "editor"]
# The only people a demo token can speak for; "editor" registers the demo thread.
DEMO_USERS: dict[str, tuple[str, list[str]]] = {
    "ann": ("Ann", []),
    "bob": ("Bob", []),
    "cat": ("Cat", []),
    "editor": ("Editor", ["admin"]),
}

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)


class DemoTokenIn(InputModel):
    user: DemoUserId


class DemoTokenOut(BaseModel):
    token: str
    user: str
    name: str
    roles: list[str]


@router.post("/token", response_model=DemoTokenOut)
def demo_token(payload: DemoTokenIn, services: ServicesDep) -> DemoTokenOut:
    """A short-lived token for one of the fixed demo readers (dev only, see the module doc)."""
    name, roles = DEMO_USERS[payload.user]
    token = mint_token(
        services.settings.jwt_secret,
        sub=f"demo-{payload.user}",
        name=name,
        email=f"{payload.user}@demo.example.com",
        roles=roles,
        ttl=timedelta(hours=12),
    )
    return DemoTokenOut(token=token, user=payload.user, name=name, roles=roles)


@router.get("")
def demo_root() -> RedirectResponse:
    return RedirectResponse("/demo/")


@router.get("/")
def demo_index() -> FileResponse:
    return _file("index.html")


@router.get("/{name}")
def demo_file(name: Literal["index.html", "demo.js", "demo.css"]) -> FileResponse:
    return _file(name)


def _file(name: str) -> FileResponse:
    return FileResponse(
        DEMO_DIR / name, media_type=DEMO_FILES[name], headers={"Cache-Control": "no-store"}
    )
