"""A throwaway database on the local PostgreSQL server (127.0.0.1:5432, trust auth)."""

import uuid
from contextlib import contextmanager
from typing import Iterator

import psycopg2

ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")


@contextmanager
def temporary_database(prefix: str) -> Iterator[str]:
    """Create a uniquely named database, yield its name, then drop it (closing stray sessions)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(**ADMIN)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
