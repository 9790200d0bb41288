"""Request and response bodies of a user's inbox, preferences and subscriptions (docs/api.md)."""

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api.inputs import CommentIdItem, InputModel
from shared.user_handlers import MAX_READ_IDS

NotificationKind = Literal["reply", "conversation", "thread"]
NotifyOn = Literal["conversations", "replies", "none"]
EmailFrequency = Literal["immediate", "hourly", "daily", "off"]
Level = Literal["watching", "default", "muted"]
# A recipient has at most one notification per comment: its id is the comment's.
NotificationId = CommentIdItem


class ActorPublic(BaseModel):
    id: str
    name: str | None = Field(description="null once they were erased (decision 33)")


class NotificationPublic(BaseModel):
    id: str = Field(description="Opaque; what POST /v1/me/notifications/read takes")
    kind: NotificationKind
    thread_id: str
    comment_id: str = Field(description="The comment this notification is about")
    actor: ActorPublic = Field(description="Who wrote the comment")
    excerpt: str | None = Field(description="null once its author was erased")
    created_at: datetime
    read_at: datetime | None = Field(description="null while unread")


class InboxPublic(BaseModel):
    notifications: list[NotificationPublic] = Field(description="Newest first")
    unread_count: int = Field(description="All unread notifications, not only this page's")
    next_cursor: str | None


class MarkReadIn(InputModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={"examples": [{"ids": ["01kf3m8q2v9x7c4d5e6f7g8h9j"]}, {"all": True}]},
    )

    ids: list[NotificationId] | None = Field(
        default=None, min_length=1, max_length=MAX_READ_IDS, description="Notification ids"
    )
    # `all` on the wire; a Python attribute of that name would shadow the builtin.
    everything: bool = Field(default=False, alias="all", description="Every notification so far")

    @model_validator(mode="after")
    def _asks_for_something(self) -> Self:
        if not self.ids and not self.everything:
            raise ValueError('give "ids" or "all": true')
        return self


class UnreadCountPublic(BaseModel):
    unread_count: int


class PreferencesPublic(BaseModel):
    notify_on: NotifyOn
    email_frequency: EmailFrequency


class PreferencesIn(InputModel):
    """Omitted or null fields keep their current value."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"notify_on": "replies", "email_frequency": "daily"}]}
    )

    notify_on: NotifyOn | None = None
    email_frequency: EmailFrequency | None = None


class SubscriptionIn(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"level": "watching"}]})

    level: Level


class SubscriptionPublic(BaseModel):
    thread_id: str
    level: Level


class SubscriptionWritten(BaseModel):
    thread_id: str
    level: Level
    version: int = Field(description="The thread version that includes this change")
