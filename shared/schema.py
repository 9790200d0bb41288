"""Every table the code knows, as Alembic compares them with a database.

The migrations (shared/migrations/versions) are frozen history: each spells out its own
tables. The code's table definitions live in these modules instead. Both must describe
the same schema: shared/migrations/env.py compares against TARGET_METADATA, and
tests/integration/test_schema.py runs `alembic check` on both kinds of freshly migrated
database and requires no difference. A module with new tables adds its MetaData here.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

import shared.log_tables
import shared.write_index  # noqa: F401  (both register their tables on SQLModel.metadata)
from shared.moderation_tables import METADATA as MODERATION
from shared.notification_tables import METADATA as NOTIFICATIONS
from shared.projection_tables import PROJECTION_METADATA
from shared.retention_tables import METADATA as RETENTION

TARGET_METADATA: Sequence[sa.MetaData] = (
    SQLModel.metadata,  # the log and the write-side index
    PROJECTION_METADATA,
    NOTIFICATIONS,
    MODERATION,
    RETENTION,
)
# `chorus rebuild` builds a fresh projection beside the live one under the first prefix
# and keeps the swapped-out one under the second until the next rebuild: neither is part
# of the schema (services/worker/rebuild.py; a test keeps the two in step).
TRANSIENT_TABLE_PREFIXES = ("rebuild_", "retired_")


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Alembic's filter: every name but the tables of a rebuild in progress or retired."""
    return not (type_ == "table" and name is not None and name.startswith(TRANSIENT_TABLE_PREFIXES))
