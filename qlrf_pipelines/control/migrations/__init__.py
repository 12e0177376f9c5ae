"""Alembic migrations of the control store, run programmatically by control.db.migrate()."""
