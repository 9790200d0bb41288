"""Notification tables.

Projection (rebuildable from thread streams, folded with their own checkpoints):
`notifications`, `thread_subscriptions`, `conversation_participants`,
`notification_comments`, `notification_checkpoints`.

Write side (kept in the same transaction as the events that change them):
`people` (name and email from the latest token: contact details stay out of the log),
`user_preferences` and `preference_history` (preferences as of any log position, so a
fold or a rebuild applies the preferences that held when the comment was posted),
`notification_reads` and `notification_read_marks` (what a user has read).

Delivery state (never rebuilt, so a rebuild never sends mail again): `email_outbox`.
"""

import sqlalchemy as sa

from shared.log_tables import POSITION_TYPE

TIMESTAMP = sa.DateTime(timezone=True)
METADATA = sa.MetaData()

notifications = sa.Table(
    "notifications",
    METADATA,
    sa.Column("recipient_id", sa.String(200), primary_key=True),
    sa.Column("comment_id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),  # reply | conversation | thread
    sa.Column("thread_id", sa.String(200), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("actor_name", sa.String(200), nullable=False),
    sa.Column("excerpt", sa.String(300), nullable=False),
    sa.Column("position", POSITION_TYPE, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Index("ix_notifications_recipient_position", "recipient_id", "position"),
    sa.Index("ix_notifications_thread", "thread_id"),
)
thread_subscriptions = sa.Table(
    "thread_subscriptions",
    METADATA,
    sa.Column("thread_id", sa.String(200), primary_key=True),
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("level", sa.String(20), nullable=False),
)
conversation_participants = sa.Table(
    "conversation_participants",
    METADATA,
    sa.Column("root_id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("thread_id", sa.String(200), nullable=False),
    sa.Index("ix_conversation_participants_thread", "thread_id"),
)
notification_comments = sa.Table(
    "notification_comments",
    METADATA,
    sa.Column("comment_id", sa.String(40), primary_key=True),
    sa.Column("thread_id", sa.String(200), nullable=False),
    sa.Column("root_id", sa.String(40), nullable=False),
    sa.Column("author_id", sa.String(200), nullable=False),
    # Moderation (migration 0008): a held comment notifies when it is published, so the
    # fold keeps what it will need then; `notified` once its notifications were made.
    sa.Column("parent_id", sa.String(40), nullable=True),
    sa.Column("author_name", sa.String(200), nullable=True),
    sa.Column("held_excerpt", sa.String(300), nullable=True),
    sa.Column("notified", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index("ix_notification_comments_thread", "thread_id"),
)
notification_checkpoints = sa.Table(
    "notification_checkpoints",
    METADATA,
    sa.Column("thread_id", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", POSITION_TYPE, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

people = sa.Table(
    "people",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)
user_preferences = sa.Table(
    "user_preferences",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("notify_on", sa.String(20), nullable=False),
    sa.Column("email_frequency", sa.String(20), nullable=False),
)
preference_history = sa.Table(
    "preference_history",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("position", POSITION_TYPE, primary_key=True),
    sa.Column("notify_on", sa.String(20), nullable=False),
    sa.Column("email_frequency", sa.String(20), nullable=False),
)
notification_reads = sa.Table(
    "notification_reads",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("comment_id", sa.String(40), primary_key=True),
    sa.Column("read_at", TIMESTAMP, nullable=False),
)
notification_read_marks = sa.Table(
    "notification_read_marks",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("up_to_position", POSITION_TYPE, nullable=False),
    sa.Column("read_at", TIMESTAMP, nullable=False),
)

email_outbox = sa.Table(
    "email_outbox",
    METADATA,
    sa.Column("id", POSITION_TYPE, primary_key=True, autoincrement=True),
    sa.Column("recipient_id", sa.String(200), nullable=False),
    sa.Column("comment_id", sa.String(40), nullable=False),
    sa.Column("frequency", sa.String(20), nullable=False),  # immediate | hourly | daily
    # pending -> sending (leased) -> sent | failed | skipped (no address)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("due_at", TIMESTAMP, nullable=False),
    sa.Column("lease_until", TIMESTAMP, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("sent_at", TIMESTAMP, nullable=True),
    sa.Column("message_id", sa.String(300), nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.UniqueConstraint("recipient_id", "comment_id", name="uq_email_outbox_notification"),
    sa.Index("ix_email_outbox_status_due", "status", "due_at"),
    sqlite_autoincrement=True,
)

# An outbox row in one of these is done with: no mailer claims it again (retention deletes it).
FINISHED_STATUSES = ("sent", "skipped", "failed")

DEFAULT_NOTIFY_ON = "conversations"
DEFAULT_EMAIL_FREQUENCY = "immediate"
