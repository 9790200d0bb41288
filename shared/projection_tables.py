"""The thread projection's tables: what thread pages and counts are read from.

Defined by a factory so that `chorus rebuild` can build a fresh set beside the live
one (same columns and indexes, prefixed names) and swap it in. Migration 0002
spells out the live set as it was created; tests/integration/test_schema.py checks that
these definitions still agree with it.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from shared.log_tables import JSON_TYPE, POSITION_TYPE

TIMESTAMP = sa.DateTime(timezone=True)


@dataclass(frozen=True)
class ThreadTables:
    threads: sa.Table
    comments: sa.Table
    participants: sa.Table
    checkpoints: sa.Table

    def all(self) -> list[sa.Table]:
        return [self.threads, self.comments, self.participants, self.checkpoints]


def thread_tables(metadata: sa.MetaData, prefix: str = "") -> ThreadTables:
    threads = sa.Table(
        f"{prefix}thread_view",
        metadata,
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("title", sa.String, nullable=True),
        sa.Column("url", sa.String, nullable=True),
        sa.Column("locked", sa.Boolean, nullable=False, default=False),
        sa.Column("comment_count", sa.Integer, nullable=False, default=0),
        sa.Column("top_level_count", sa.Integer, nullable=False, default=0),
        sa.Column("participant_count", sa.Integer, nullable=False, default=0),
        sa.Column("last_comment_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        # `GET /v1/threads?url=` (migration 0010). A hash index on PostgreSQL: equality
        # is all it answers, and a B-tree refuses a key over ~2.7 kB (a long non-ASCII URL).
        sa.Index(f"ix_{prefix}thread_view_url", "url", postgresql_using="hash"),
    )
    comments = sa.Table(
        f"{prefix}comment_view",
        metadata,
        sa.Column("comment_id", sa.String(40), primary_key=True),
        sa.Column("thread_id", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.String(40), nullable=True),
        sa.Column("root_id", sa.String(40), nullable=False),
        sa.Column("depth", sa.Integer, nullable=False),
        # Ancestor ids, root first, joined by "/": descendant counts walk it.
        sa.Column("path", sa.Text, nullable=False),
        # The stream version of the CommentPosted event: the thread's ordering key.
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("position", POSITION_TYPE, nullable=False),
        sa.Column("author_id", sa.String(200), nullable=False),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("body_html", sa.Text, nullable=True),
        # The markdown the author wrote, for their edit box (migration 0007); None if deleted.
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("edited_at", TIMESTAMP, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, default=False),
        sa.Column("like_count", sa.Integer, nullable=False, default=0),
        sa.Column("reply_count", sa.Integer, nullable=False, default=0),
        sa.Column("descendant_count", sa.Integer, nullable=False, default=0),
        # Moderation (migration 0008): counts above count published comments only.
        sa.Column("status", sa.String(10), nullable=False, server_default="published"),
        sa.Column("held_for", sa.String(200), nullable=True),  # reasons joined by ","
        sa.Column("featured", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("badges", sa.String(100), nullable=True),  # joined by ","
        # Open flags (since the last approval), in all and by reason.
        sa.Column("flag_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("flags", JSON_TYPE, nullable=True),
        sa.Index(f"ix_{prefix}comment_view_thread_depth_seq", "thread_id", "depth", "seq"),
        sa.Index(f"ix_{prefix}comment_view_status_position", "status", "position"),
        sa.Index(f"ix_{prefix}comment_view_flagged_position", "flag_count", "position"),
        sa.Index(
            f"ix_{prefix}comment_view_thread_depth_likes",
            "thread_id",
            "depth",
            "like_count",
            "seq",
        ),
        sa.Index(f"ix_{prefix}comment_view_parent_seq", "parent_id", "seq"),
    )
    participants = sa.Table(
        f"{prefix}thread_participants",
        metadata,
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("author_id", sa.String(200), primary_key=True),
        sa.Column("visible_comments", sa.Integer, nullable=False),
    )
    checkpoints = sa.Table(
        f"{prefix}thread_checkpoints",
        metadata,
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", POSITION_TYPE, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    return ThreadTables(threads, comments, participants, checkpoints)


def dead_letters_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "dead_letters",
        metadata,
        sa.Column("id", POSITION_TYPE, primary_key=True, autoincrement=True),
        sa.Column("projection", sa.String(50), nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", POSITION_TYPE, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("failed_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("projection", "event_id", name="uq_dead_letters_projection_event"),
        sqlite_autoincrement=True,
    )


PROJECTION_METADATA = sa.MetaData()
LIVE = thread_tables(PROJECTION_METADATA)
DEAD_LETTERS = dead_letters_table(PROJECTION_METADATA)
