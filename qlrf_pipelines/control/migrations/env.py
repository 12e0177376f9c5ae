"""Alembic environment for the control store.

control.db.migrate() hands over an open connection in config.attributes["connection"], already
inside a transaction that holds the migration lock, so two processes opening a fresh store never
race. Run by hand (alembic with this directory as script_location), it falls back to the
sqlalchemy.url option or QLRF_CONTROL_URL.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from qlrf_pipelines.control.tables import metadata

VERSION_TABLE = "control_alembic_version"  # not "alembic_version": dagster-postgres uses that name


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


config = context.config
connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or os.environ["QLRF_CONTROL_URL"]
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
