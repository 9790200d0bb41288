"""Request and response bodies of the public API (see docs/api.md)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.api.inputs import CommentIdItem, InputModel


class ThreadIn(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "South Korea and the POWs",
                    "url": "https://example.com/p/south-korea",
                    "locked": False,
                }
            ]
        }
    )

    title: str | None = Field(default=None, examples=["South Korea and the POWs"])
    url: str | None = Field(default=None, examples=["https://example.com/p/south-korea"])
    locked: bool | None = Field(default=None, description="Omitted: unchanged (new threads: false)")
    moderation: Literal["post", "pre", "first_comments"] | None = Field(
        default=None,
        description="The thread's own moderation mode; null: the site's; omitted: unchanged",
    )


class ThreadWritten(BaseModel):
    id: str
    title: str | None
    url: str | None
    locked: bool
    version: int
    moderation: str | None = Field(description="The thread's own mode; null: the site's")


class CommentIn(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"body": "Great piece, *thank you*.", "parent_id": None}]}
    )

    body: str = Field(description="Markdown, 1-10,000 characters after trimming")
    parent_id: CommentIdItem | None = None


class CommentEditIn(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"body": "Great piece, **thanks**."}]}
    )

    body: str = Field(description="Markdown, 1-10,000 characters after trimming")


class CommentCreated(BaseModel):
    id: str
    thread_id: str
    parent_id: str | None
    version: int = Field(description="The thread version that includes this comment")
    position: int = Field(description="The event's position in the global log")
    status: Literal["published", "pending"] = Field(
        description="pending: it waits for a moderator, shown only to its author until then"
    )
    held_for: list[str] = Field(description="Why it waits (empty when published)")


class CommentWritten(BaseModel):
    id: str
    thread_id: str
    version: int


class LikeState(BaseModel):
    id: str
    thread_id: str
    like_count: int
    version: int


class EventPublic(BaseModel):
    position: int
    version: int
    event_id: str
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


class ThreadEventsPublic(BaseModel):
    thread_id: str
    version: int
    events: list[EventPublic]
    next_after_version: int | None
