"""Read access to the DuckDB warehouse for the CLI and tests.

Only dbt writes the warehouse (inside a run, in the `warehouse` pool). Everything here opens it
read-only and closes it straight away, because an open handle blocks the next writer.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import duckdb


class WarehouseError(RuntimeError):
    pass


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if not path.exists():
        raise WarehouseError(f"{path}: no warehouse yet; run `qlrf run` first")
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise WarehouseError(f"{path}: cannot open read-only (a run may be writing it): {exc}") from None
    try:
        yield connection
    finally:
        connection.close()


def query(path: Path, sql: str, parameters: list[Any] | None = None) -> QueryResult:
    with read_only(path) as connection:
        try:
            cursor = connection.execute(sql, parameters or [])
        except duckdb.Error as exc:
            raise WarehouseError(str(exc).strip()) from None
        if cursor.description is None:
            return QueryResult([], [])
        return QueryResult([d[0] for d in cursor.description], cursor.fetchall())


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def render(result: QueryResult, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps([dict(zip(result.columns, map(_plain, row))) for row in result.rows], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([json.dumps(_plain(v)) if isinstance(v, (list, dict)) else _plain(v) for v in row])
        return buffer.getvalue()
    from tabulate import tabulate

    return tabulate(result.rows, headers=result.columns, tablefmt="simple", missingval="")
