"""Alembic environment: run by `chorus migrate` (see shared/migrate.py).

The target is every table the code knows (shared/schema.py), so `alembic check` and
autogenerate compare the whole schema, and never propose dropping a projection table or
the transient tables of a rebuild in progress.
"""

from alembic import context
from sqlalchemy.engine import Connection

from shared.db import create_db_engine
from shared.schema import TARGET_METADATA, include_name

config = context.config
connectable = config.attributes.get("connection")


def migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=TARGET_METADATA,
        include_name=include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    if connectable is not None:
        migrate(connectable)
        return
    engine = create_db_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        migrate(connection)
    engine.dispose()


run()
