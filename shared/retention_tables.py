"""What the retention job removed and the totals still need (migration 0006).

`email_outbox_pruned` holds, per final status (sent, skipped, failed), how many outbox rows
the retention job has deleted. It is written in the same transaction as the deletion, so
"rows in `email_outbox` + pruned rows" is the same number before and after a prune: the
all-time totals `/metrics` reports.
"""

import sqlalchemy as sa

METADATA = sa.MetaData()

email_outbox_pruned = sa.Table(
    "email_outbox_pruned",
    METADATA,
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("pruned_rows", sa.BigInteger, nullable=False),
)
