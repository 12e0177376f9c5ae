"""Engines and migrations for the control store.

SQLite is the default (one file under QLRF_HOME) and PostgreSQL the production choice, by URL only.
The CLI, sensors and runs are separate processes writing the same store, so on SQLite the journal
is WAL (readers never block the writer), every connection waits for a lock instead of failing
(busy timeout), and every write transaction starts with BEGIN IMMEDIATE, so it holds the write
lock from its first read and a read-then-write (next task number, audit chain head) cannot race.
The schema is created and upgraded by Alembic when the store is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from qlrf_pipelines.settings import Paths, qlrf_home

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "control_alembic_version"
SQLITE_BUSY_TIMEOUT_S = 30
BEGIN_OPTION = "qlrf_sqlite_begin"  # execution option: "IMMEDIATE" for write transactions
_MIGRATION_LOCK_KEY = 0x51_4C_52_46  # "QLRF": pg_advisory_xact_lock key while migrating


def resolve_url(url: str | None = None, home: Path | None = None) -> str:
    """The store's URL: the argument, else QLRF_CONTROL_URL, else sqlite at QLRF_HOME/control.sqlite."""
    if url:
        return url
    configured = os.environ.get("QLRF_CONTROL_URL")
    if configured:
        return configured
    path = Paths(Path(home).expanduser().resolve() if home else qlrf_home()).control_store_path
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """An engine with the settings several concurrent processes need (see the module docstring)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    database = parsed.database
    in_memory = not database or database == ":memory:"
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        poolclass=StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for this package's migrations (no alembic.ini needed).

    Developers add a revision with: command.revision(alembic_config(url), message="...",
    autogenerate=True), then review the file it writes in migrations/versions/.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to head in one transaction that excludes concurrent migrators."""
    if current_revision(engine) == head_revision():
        return
    with engine.connect() as conn:
        conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
