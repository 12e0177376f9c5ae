"""Evaluate the catalog's checks on the DuckDB warehouse, read-only, after dbt has finished.

Each check runs on its own: a check whose SQL is wrong or whose table is missing gets status
`error` with the message, and the others still run. A check that `requires` a relation the
warehouse does not have is `not_assessed` with the catalog's reason. Otherwise the check's
population query gives `checked_count` and the failing rows come from
- gx: the population as a pandas dataframe validated by the check's GX suite (gx_suite.py),
  failing ids from the unexpected index lists;
- sql: the check's failing-rows query;
- drift_rules: the open config drift items of the listed rule ids (rules not enabled in the
  landed rule set are skipped; none enabled means not_assessed).

The evaluation time and the check's params are DuckDB variables (`getvariable('evaluated_at')`),
set per check and reset after it, so one check's params never leak into the next.
Waivers are not applied here: a waiver belongs to a control, so evidence.py applies them per
(framework, control, check).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import duckdb

from qlrf_pipelines.compliance.catalog import Catalog, Check

STATUSES = ("pass", "fail", "waived", "error", "not_assessed")
DRIFT_RULES_RELATION = "staging.stg_drift_rules"
_MAX_ERROR = 2000

DEFAULT_DRIFT_POPULATION = """
select asset_id, site_id
from assets
where kind in ('vm', 'node', 'workload') and state is distinct from 'terminated'
"""

DRIFT_FAILING = """
select
    asset_id,
    any_value(site_id) as site_id,
    string_agg(coalesce(detail, rule_id), '; ' order by rule_id, detail) as detail
from drift_items
where status = 'open'
  and drift_type = 'config'
  and list_contains(getvariable('rule_ids'), rule_id)
group by asset_id
"""


@dataclass(frozen=True)
class FailingRow:
    asset_id: str
    site_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class CheckResult:
    check: Check
    status: str  # pass | fail | error | not_assessed (waived is decided per control, in evidence.py)
    checked_count: int = 0
    failures: tuple[FailingRow, ...] = ()
    error: str | None = None  # the error message, or why the check was not assessed
    duration_ms: int = 0

    @property
    def failing_asset_ids(self) -> list[str]:
        return [f.asset_id for f in self.failures]


@dataclass
class _Run:
    connection: duckdb.DuckDBPyConnection
    evaluated_at: datetime
    relations: set[str] = field(default_factory=set)
    gx: Any = None


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip()}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


def _relations(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """Table and view names, bare and schema-qualified, lower case."""
    rows = connection.execute("select table_schema, table_name from information_schema.tables").fetchall()
    return {name.lower() for schema, table in rows for name in (table, f"{schema}.{table}")}


def _set_variables(connection, values: dict[str, Any]) -> None:
    for name, value in values.items():
        connection.execute(f"SET VARIABLE {name} = ?", [value])


def _reset_variables(connection, names: Iterable[str]) -> None:
    for name in names:
        try:
            connection.execute(f"RESET VARIABLE {name}")
        except duckdb.Error:
            pass


def _rows(connection, sql: str) -> list[dict[str, Any]]:
    cursor = connection.execute(sql)
    columns = [d[0].lower() for d in cursor.description]
    if "asset_id" not in columns:
        raise ValueError(f"the query returns no asset_id column (columns: {', '.join(columns)})")
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _failures(rows: Iterable[dict[str, Any]]) -> tuple[FailingRow, ...]:
    """One FailingRow per asset id (details of repeated ids joined), in asset id order."""
    merged: dict[str, FailingRow] = {}
    for row in rows:
        asset_id = "(null)" if row.get("asset_id") is None else str(row["asset_id"])
        site_id = None if row.get("site_id") is None else str(row["site_id"])
        detail = None if row.get("detail") is None else str(row["detail"])
        earlier = merged.get(asset_id)
        if earlier is not None:
            details = "; ".join(d for d in (earlier.detail, detail) if d) or None
            merged[asset_id] = FailingRow(asset_id, earlier.site_id or site_id, details)
        else:
            merged[asset_id] = FailingRow(asset_id, site_id, detail)
    return tuple(merged[k] for k in sorted(merged))


def _count(connection, population: str) -> int:
    return int(connection.execute(f"select count(*) from ({population}) as population").fetchone()[0])


def _evaluate_sql(run: _Run, check: Check) -> tuple[int, tuple[FailingRow, ...]]:
    return _count(run.connection, check.population), _failures(_rows(run.connection, check.failing))


def _evaluate_gx(run: _Run, check: Check) -> tuple[int, tuple[FailingRow, ...]]:
    from qlrf_pipelines.compliance.gx_suite import ID_COLUMN, GxValidator

    frame = run.connection.execute(check.population).df()
    if ID_COLUMN not in frame.columns:
        raise ValueError(f"the population query returns no {ID_COLUMN} column (columns: {', '.join(frame.columns)})")
    if run.gx is None:
        run.gx = GxValidator()
    outcome = run.gx.validate(check.id, frame, check.expectations or [])
    if outcome.errors:
        raise RuntimeError("expectation raised: " + " | ".join(outcome.errors))
    sites = {}
    if "site_id" in frame.columns:
        sites = {str(a): s for a, s in zip(frame[ID_COLUMN], frame["site_id"]) if isinstance(s, str)}
    rows = [
        {"asset_id": asset_id or check.asset, "site_id": sites.get(asset_id), "detail": "; ".join(details)}
        for asset_id, details in outcome.failing.items()
    ]
    return len(frame), _failures(rows)


def _evaluate_drift_rules(run: _Run, check: Check) -> tuple[int, tuple[FailingRow, ...], str | None]:
    """(checked, failures, not-assessed reason or None)."""
    rule_ids = list(check.rule_ids or [])
    if DRIFT_RULES_RELATION in run.relations:
        enabled = {
            r[0] for r in run.connection.execute(f"select rule_id from {DRIFT_RULES_RELATION} where enabled").fetchall()
        }
        if not enabled & set(rule_ids):
            return 0, (), (
                f"drift rule(s) {', '.join(rule_ids)} not enabled in the landed desired-state rule set "
                "(QLRF_DRIFT_RULES), so no drift item can show them"
            )
        rule_ids = [r for r in rule_ids if r in enabled]
    _set_variables(run.connection, {"rule_ids": rule_ids})
    checked = _count(run.connection, check.population or DEFAULT_DRIFT_POPULATION)
    return checked, _failures(_rows(run.connection, DRIFT_FAILING)), None


def evaluate_check(run: _Run, check: Check) -> CheckResult:
    started = time.monotonic()

    def done(status: str, checked: int = 0, failures: tuple[FailingRow, ...] = (), error: str | None = None):
        return CheckResult(check, status, checked, failures, error, int((time.monotonic() - started) * 1000))

    missing = [name for name in check.requires if name.lower() not in run.relations]
    if missing:
        return done("not_assessed", error=f"{check.not_assessed_reason} (missing: {', '.join(missing)})")
    variables = {"evaluated_at": run.evaluated_at, **check.params}
    try:
        _set_variables(run.connection, variables)
        if check.kind == "gx":
            checked, failures = _evaluate_gx(run, check)
        elif check.kind == "sql":
            checked, failures = _evaluate_sql(run, check)
        else:
            checked, failures, reason = _evaluate_drift_rules(run, check)
            if reason:
                return done("not_assessed", error=reason)
    except Exception as exc:  # noqa: BLE001 - one broken check is evidence of itself, never stops the others
        return done("error", error=_short(exc))
    finally:
        _reset_variables(run.connection, [*variables, "rule_ids"])
    return done("fail" if failures else "pass", checked, failures)


def evaluate(
    connection: duckdb.DuckDBPyConnection, catalog: Catalog, evaluated_at: datetime, check_ids: Iterable[str] | None = None
) -> dict[str, CheckResult]:
    """Every check of the catalog (or the named ones), in catalog order."""
    moment = evaluated_at if evaluated_at.tzinfo else evaluated_at.replace(tzinfo=timezone.utc)
    run = _Run(connection, moment.astimezone(timezone.utc), _relations(connection))
    wanted = list(check_ids) if check_ids is not None else list(catalog.checks)
    return {check_id: evaluate_check(run, catalog.checks[check_id]) for check_id in wanted}


def unavailable(catalog: Catalog, error: str) -> dict[str, CheckResult]:
    """Every check errored the same way (the warehouse could not be opened)."""
    return {check_id: CheckResult(check, "error", error=error) for check_id, check in catalog.checks.items()}


def evaluate_warehouse(warehouse_path: Path, catalog: Catalog, evaluated_at: datetime) -> dict[str, CheckResult]:
    """Open the warehouse read-only, evaluate, close. If it cannot be opened, every check is an
    `error` naming why (that is still evidence: the control could not be checked)."""
    from qlrf_pipelines.warehouse import WarehouseError, read_only

    try:
        with read_only(Path(warehouse_path)) as connection:
            return evaluate(connection, catalog, evaluated_at)
    except WarehouseError as exc:
        return unavailable(catalog, f"warehouse unavailable: {exc}")
