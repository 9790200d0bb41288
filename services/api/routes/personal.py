"""A person's data and being forgotten (decision 33): `GET /v1/me/data`, `DELETE /v1/me`,
`POST /v1/users/{user_id}/erase` (admins).

An erasure answers 202: it is committed, and the folds turn the person's comments into
placeholders and their notifications into nothing moments later. No Idempotency-Key is
kept for it: erasing again is harmless by itself, and a stored answer would be a trace.
"""

from dataclasses import replace

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from services.api.deps import CurrentUser, ServicesDep, WriteContext
from services.api.my_data_queries import MyData, my_data
from services.api.openapi import errors
from services.api.personal_schemas import (
    EditPublic,
    ErasurePublic,
    MyCommentPublic,
    MyDataPublic,
    MyFlagPublic,
    MyLikePublic,
    MyNotificationPublic,
    MyPreferencesPublic,
    MySubscriptionPublic,
    ProfilePublic,
)
from services.api.routes.moderation import UserId
from shared.commands import EraseUser, RequestContext
from shared.results import ErasedPerson

router = APIRouter(prefix="/v1", tags=["personal data"], responses=errors(401, 403, 422, 503))


@router.get("/me/data", response_model=MyDataPublic)
async def get_my_data(user: CurrentUser, services: ServicesDep, response: Response) -> MyDataPublic:
    """Everything Chorus holds about you, in one document: profile, every comment with its
    edits, likes, flags with their notes, notifications, preferences, subscriptions."""
    response.headers["Cache-Control"] = "no-store"  # a person's whole file: no cache keeps it
    data = await run_in_threadpool(my_data, services.engine, user.id)
    return _my_data(data)


@router.delete("/me", response_model=ErasurePublic, status_code=202)
async def erase_me(ctx: WriteContext, services: ServicesDep) -> ErasurePublic:
    """Forget me: my name, email and every text I wrote, everywhere, the log included. My
    comments stay as deleted placeholders (others' replies to them stay)."""
    return await _erase(services, ctx.actor.id, ctx)


@router.post(
    "/users/{user_id}/erase", response_model=ErasurePublic, status_code=202, tags=["moderation"]
)
async def erase_user(user_id: UserId, ctx: WriteContext, services: ServicesDep) -> ErasurePublic:
    """Forget a person, as `DELETE /v1/me` does for oneself (admins only)."""
    return await _erase(services, user_id, ctx)


async def _erase(services: ServicesDep, user_id: str, ctx: RequestContext) -> ErasurePublic:
    erased: ErasedPerson = await services.bus.run(
        EraseUser(user_id), replace(ctx, idempotency_key=None)
    )
    return ErasurePublic(user_id=erased.user_id, threads=erased.threads, comments=erased.comments)


def _my_data(data: MyData) -> MyDataPublic:
    profile = data.profile
    return MyDataPublic(
        user_id=data.user_id,
        profile=None
        if profile is None
        else ProfilePublic(name=profile.name, email=profile.email, updated_at=profile.updated_at),
        comments=[
            MyCommentPublic(
                id=c.comment_id,
                thread_id=c.thread_id,
                parent_id=c.parent_id,
                body=c.body,
                posted_at=c.posted_at,
                deleted=c.deleted,
                status=c.status,
                edits=[EditPublic(body=e.body, at=e.at) for e in c.edits],
            )
            for c in data.comments
        ],
        likes=[MyLikePublic(comment_id=x.comment_id, thread_id=x.thread_id) for x in data.likes],
        flags=[
            MyFlagPublic(
                comment_id=f.comment_id, thread_id=f.thread_id, reason=f.reason, note=f.note
            )
            for f in data.flags
        ],
        notifications=[
            MyNotificationPublic(
                comment_id=n.comment_id,
                kind=n.kind,
                thread_id=n.thread_id,
                actor_id=n.actor_id,
                actor_name=n.actor_name or None,
                excerpt=n.excerpt or None,
                created_at=n.created_at,
            )
            for n in data.notifications
        ],
        preferences=MyPreferencesPublic(
            notify_on=data.notify_on,
            email_frequency=data.email_frequency,
        ),
        subscriptions=[
            MySubscriptionPublic(thread_id=s.thread_id, level=s.level) for s in data.subscriptions
        ],
    )
