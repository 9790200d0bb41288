"""Response bodies of a person's data and erasure (docs/api.md, "Being forgotten")."""

from datetime import datetime

from pydantic import BaseModel, Field

from services.api.inbox_schemas import EmailFrequency, Level, NotificationKind, NotifyOn
from services.api.read_schemas import CommentStatus


class ErasurePublic(BaseModel):
    user_id: str
    status: str = Field(
        default="accepted",
        description="The erasure is committed; pages and inboxes show it once folded",
    )
    threads: int = Field(description="Threads that were told (0 when nothing was left)")
    comments: int = Field(description="The person's comments that became placeholders")


class ProfilePublic(BaseModel):
    name: str
    email: str | None
    updated_at: datetime = Field(description="When a token last told Chorus these")


class EditPublic(BaseModel):
    body: str = Field(description="The markdown as it was changed to")
    at: datetime


class MyCommentPublic(BaseModel):
    id: str
    thread_id: str
    parent_id: str | None
    body: str = Field(description="The markdown as first posted")
    posted_at: datetime
    deleted: bool
    status: CommentStatus
    edits: list[EditPublic] = Field(description="Every later text, oldest first")


class MyLikePublic(BaseModel):
    comment_id: str
    thread_id: str


class MyFlagPublic(BaseModel):
    comment_id: str
    thread_id: str
    reason: str
    note: str


class MyNotificationPublic(BaseModel):
    comment_id: str
    kind: NotificationKind
    thread_id: str
    actor_id: str
    actor_name: str | None = Field(description="null once that author was erased")
    excerpt: str | None = Field(description="null once that author was erased")
    created_at: datetime


class MyPreferencesPublic(BaseModel):
    notify_on: NotifyOn
    email_frequency: EmailFrequency


class MySubscriptionPublic(BaseModel):
    thread_id: str
    level: Level


class MyDataPublic(BaseModel):
    user_id: str
    profile: ProfilePublic | None = Field(description="null until a token of yours wrote")
    comments: list[MyCommentPublic] = Field(description="Oldest first, deleted ones too")
    likes: list[MyLikePublic]
    flags: list[MyFlagPublic]
    notifications: list[MyNotificationPublic] = Field(description="Newest first")
    preferences: MyPreferencesPublic
    subscriptions: list[MySubscriptionPublic] = Field(description="Watched and muted threads")
