"""The signed-in user's own things: notifications, preferences, thread subscriptions."""

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from services.api import inbox_queries as iq
from services.api.cursors import MAX_CURSOR_CHARS
from services.api.deps import CurrentUser, Cursors, ServicesDep, ThreadId, WriteContext
from services.api.inbox_schemas import (
    ActorPublic,
    InboxPublic,
    MarkReadIn,
    NotificationPublic,
    PreferencesIn,
    PreferencesPublic,
    SubscriptionIn,
    SubscriptionPublic,
    SubscriptionWritten,
    UnreadCountPublic,
)
from services.api.openapi import errors
from services.api.rate_limit import MarkingReadLimit, PreferencesLimit, SubscribingLimit
from shared.commands import ChangePreferences, ChangeSubscription, MarkNotificationsRead
from shared.fold_progress import UnreadChanged, announce

router = APIRouter(prefix="/v1", tags=["me"], responses=errors(400, 401, 403, 409, 413, 422, 503))

Limit = Annotated[int, Query(ge=1, le=100, description="Notifications per page")]
Cursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the last page")
]
# Cursor keys are capped at 2**31 - 1 but log positions are BIGINT: carry one in two halves.
_HALF = 2**31


@router.get("/me/notifications", response_model=InboxPublic)
def list_notifications(
    user: CurrentUser,
    services: ServicesDep,
    cursors: Cursors,
    unread_only: bool = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> InboxPublic:
    """The user's notifications, newest first, with the count of all unread ones."""
    # The cursor is tied to the user and the filter: replayed elsewhere it is refused.
    listing, view = f"inbox:{user.id}", "unread" if unread_only else "all"
    before = None
    if cursor is not None:
        high, low = cursors.decode(cursor, listing, view, 2)
        before = high * _HALF + low
    page = iq.inbox_page(
        services.engine, user.id, unread_only=unread_only, before=before, limit=limit
    )
    after = page.next_position
    return InboxPublic(
        notifications=[_notification(record) for record in page.notifications],
        unread_count=page.unread_count,
        next_cursor=None if after is None else cursors.encode(listing, view, divmod(after, _HALF)),
    )


@router.post(
    "/me/notifications/read",
    response_model=UnreadCountPublic,
    dependencies=[MarkingReadLimit],
    responses=errors(429),
)
async def mark_notifications_read(
    payload: MarkReadIn, ctx: WriteContext, services: ServicesDep
) -> UnreadCountPublic:
    """Mark notifications read, by id or all of them; answers how many are left unread."""
    command = MarkNotificationsRead(tuple(payload.ids or ()), everything=payload.everything)
    await services.bus.run(command, ctx)
    # Committed: the reader's live streams, in every API process, read their count again.
    await run_in_threadpool(announce, services.redis, UnreadChanged((ctx.actor.id,)))
    unread = await run_in_threadpool(iq.unread_count, services.engine, ctx.actor.id)
    return UnreadCountPublic(unread_count=unread)


@router.get("/me/preferences", response_model=PreferencesPublic)
def get_preferences(user: CurrentUser, services: ServicesDep) -> PreferencesPublic:
    """When to notify and how often to email; the defaults until changed."""
    notify_on, frequency = iq.preferences(services.engine, user.id)
    return PreferencesPublic(notify_on=notify_on, email_frequency=frequency)


@router.put(
    "/me/preferences",
    response_model=PreferencesPublic,
    dependencies=[PreferencesLimit],
    responses=errors(429),
)
async def change_preferences(
    payload: PreferencesIn, ctx: WriteContext, services: ServicesDep
) -> PreferencesPublic:
    """Change either preference; it applies to comments posted from now on."""
    command = ChangePreferences(payload.notify_on, payload.email_frequency)
    preferences = await services.bus.run(command, ctx)
    return PreferencesPublic.model_validate(preferences, from_attributes=True)


@router.get("/threads/{thread_id}/subscription", response_model=SubscriptionPublic)
def get_subscription(
    thread_id: ThreadId, user: CurrentUser, services: ServicesDep
) -> SubscriptionPublic:
    """The user's level for the thread, as folded so far."""
    level = iq.subscription_level(services.engine, thread_id, user.id)
    return SubscriptionPublic(thread_id=thread_id, level=level)


@router.put(
    "/threads/{thread_id}/subscription",
    response_model=SubscriptionWritten,
    dependencies=[SubscribingLimit],
    responses=errors(429),
)
async def change_subscription(
    thread_id: ThreadId, payload: SubscriptionIn, ctx: WriteContext, services: ServicesDep
) -> SubscriptionWritten:
    """Watch a thread (hear of every comment), mute it (hear of none) or go back to default."""
    # The change is in the thread's stream: the fold applies it in order with the comments.
    changed = await services.bus.run(ChangeSubscription(thread_id, payload.level), ctx)
    return SubscriptionWritten.model_validate(changed, from_attributes=True)


def _notification(record: iq.NotificationRecord) -> NotificationPublic:
    return NotificationPublic(
        id=record.comment_id,  # a recipient has at most one notification per comment
        kind=record.kind,
        thread_id=record.thread_id,
        comment_id=record.comment_id,
        # An erased author's notifications keep neither name nor words ("" in the row).
        actor=ActorPublic(id=record.actor_id, name=record.actor_name or None),
        excerpt=record.excerpt or None,
        created_at=record.created_at,
        read_at=record.read_at,
    )
