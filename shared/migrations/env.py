"""Alembic environment: run by `chorus migrate` (see shared/migrate.py)."""

from alembic import context
from sqlmodel import SQLModel

import shared.log_tables
import shared.write_index  # noqa: F401  (registers the tables on SQLModel.metadata)
from shared.db import create_db_engine

config = context.config
connectable = config.attributes.get("connection")


def run() -> None:
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=SQLModel.metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=SQLModel.metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
