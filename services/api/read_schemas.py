"""Response bodies of the read API (see docs/api.md): what a reader of a thread is shown."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.api.inputs import InputModel
from shared.validation import THREAD_ID_PATTERN

CommentStatus = Literal["published", "pending", "rejected"]


class AuthorPublic(BaseModel):
    id: str
    name: str
    badges: list[str] = Field(
        default_factory=list, description='`["staff"]` when they posted as staff'
    )


class CommentPublic(BaseModel):
    id: str
    thread_id: str
    parent_id: str | None
    author: AuthorPublic | None = Field(description="null when the comment is deleted")
    body_html: str | None = Field(description="Sanitised HTML; null when deleted")
    created_at: datetime
    edited_at: datetime | None
    deleted: bool = Field(description="A deleted comment shows only while it has replies")
    like_count: int
    reply_count: int = Field(description="Direct replies published and not deleted")
    descendant_count: int = Field(description="Replies at any depth published and not deleted")
    depth: int = Field(description="0 for a top-level comment")
    replies: list["CommentPublic"] = Field(description="The first replies, oldest first")
    replies_next_cursor: str | None = Field(
        description="Set when replies were left out: pass it to "
        "GET /v1/comments/{id}/replies?cursor= to fetch the rest"
    )
    liked_by_me: bool | None = Field(
        default=None, description="With a bearer token: whether you like it; else null"
    )
    body: str | None = Field(
        default=None,
        description="With a bearer token, on your own comments: the markdown you wrote "
        "(what an edit box starts from); else null",
    )
    status: CommentStatus = Field(
        default="published",
        description="Pending and rejected comments are shown in full only to their author "
        "and to moderators; to others, a placeholder while replies show below it",
    )
    featured: bool = Field(default=False, description="Chosen by a moderator")
    held_for: list[str] | None = Field(
        default=None,
        description="Why it waits for a moderator (empty: it does not); shown to its "
        "author and to moderators, else null",
    )
    flags: dict[str, int] | None = Field(
        default=None, description="For moderators: open reader flags by reason; else null"
    )


class ThreadPublic(BaseModel):
    id: str
    title: str | None
    url: str | None
    locked: bool
    comment_count: int = Field(description="Published comments that are not deleted")
    participant_count: int
    last_comment_at: datetime | None
    version: int = Field(description="How far the projection has applied the thread's log")


class ThreadPagePublic(BaseModel):
    thread_id: str
    version: int
    comment_count: int
    comments: list[CommentPublic]
    next_cursor: str | None


class RepliesPagePublic(BaseModel):
    comment_id: str
    thread_id: str
    version: int
    replies: list[CommentPublic]
    next_cursor: str | None


ThreadIdItem = Annotated[str, StringConstraints(pattern=THREAD_ID_PATTERN)]


class CountsIn(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"thread_ids": ["post-2026-11-27-south-korea", "post-42"]}]}
    )

    thread_ids: list[ThreadIdItem] = Field(min_length=1, max_length=100)


class CountsPublic(BaseModel):
    counts: dict[str, int]


class CommentContextPublic(BaseModel):
    thread_id: str
    version: int = Field(description="How far the projection has applied the thread's log")
    ancestors: list[CommentPublic] = Field(
        description="The comment's ancestors, root first, without their replies"
    )
    comment: CommentPublic
