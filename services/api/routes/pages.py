"""Pages for people rather than programs: what `GET /` shows, and the permalink page a
notification email links to when its thread has no page of its own (no registered `url`).

Server-rendered and autoescaped (shared/templating.py): names and titles are the users'
own words. Comment bodies are shown as `body_html`, the sanitised HTML the API hands to
every publication to embed (shared/rendering.py).
"""

from functools import cache
from typing import Any
from urllib.parse import urldefrag

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from services.api import read_queries as rq
from services.api.deps import CommentId, ServicesDep
from services.api.routes.demo import DEMO_THREAD
from shared.templating import template_environment
from shared.timeutil import as_utc

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(services: ServicesDep) -> HTMLResponse:
    """Where a person who opens the server's address is pointed: the docs, and the demo."""
    return HTMLResponse(_render("home.html.j2", demo_enabled=services.settings.demo_enabled))


@router.get("/c/{comment_id}", response_class=HTMLResponse)
def comment_page(comment_id: CommentId, services: ServicesDep) -> HTMLResponse:
    """A comment with the comments it answers, root first: what an email links to."""
    context = rq.comment_context(services.engine, comment_id, per_parent=0)
    thread = rq.thread_summary(services.engine, context.thread_id)
    anchor = f"#comment-{comment_id}"
    if thread.url:
        elsewhere = urldefrag(thread.url).url + anchor
    elif services.settings.demo_enabled and context.thread_id == DEMO_THREAD:
        elsewhere = f"/demo/{anchor}"
    else:
        elsewhere = None
    page = _render(
        "comment.html.j2",
        title=thread.title or context.thread_id,
        thread_link=elsewhere,
        ancestors=[_shown(node) for node in context.ancestors],
        comment=_shown(context.comment),
        api_link=f"/v1/comments/{comment_id}/context",
    )
    return HTMLResponse(page)


def _shown(node: rq.CommentNode) -> dict[str, Any]:
    created = as_utc(node.created_at)
    return {
        "id": node.comment_id,
        "author": node.author_name if node.shown else None,
        "body_html": node.body_html if node.shown else None,
        "created_at": created.strftime("%Y-%m-%d %H:%M UTC") if created else "",
        "edited": node.edited_at is not None,
        "reply_count": node.reply_count,
    }


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(context)


@cache
def _environment() -> Environment:
    return template_environment("services.api")
