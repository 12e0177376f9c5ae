"""Evidence rows: what was checked, on which data, with what result, and which failures were
accepted, for every (framework, control, check) of the catalog, appended to the lake.

One evaluation run lands one file per entity under site id "compliance" (never overwritten):
- `control_evidence`, one row per (framework, control, check) with the columns of
  chain.EVIDENCE_COLUMNS: the check's definition and its digest, the site snapshots (and their
  lake files) the warehouse was built from, status and counts, every failing id, the waivers
  applied, and the SHA-256 chain link;
- `control_evidence_failures`, one row per failing id of each evidence row, with its detail and
  the waiver that accepted it (null when none did).

Counting: `failing_count` is every failing id (waived ones included) and `waived_count` those a
waiver in force accepted; `failing_asset_ids` lists them all. Status is `pass` with no failure,
`waived` when every failure is waived (never `pass`), `fail` otherwise; `error` and
`not_assessed` come from the runner, with the message or reason in `error`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from qlrf_pipelines.compliance.catalog import Catalog, canonical_json
from qlrf_pipelines.compliance.chain import EVIDENCE_COLUMNS, FILE_KEY, chain_key, seal
from qlrf_pipelines.compliance.landing import EVIDENCE_SITE_ID
from qlrf_pipelines.compliance.runner import CheckResult
from qlrf_pipelines.lake import SnapshotFile, latest_snapshot_ids, list_snapshots, snapshot_id_for, snapshot_time, write_snapshot
from qlrf_pipelines.models.records import ENTITY_SCHEMAS

CONTROL_SITE_ID = "control"
FAILURE_COLUMNS = ("evidence_id", "asset_id", "site_id", "detail", "waiver_id")


class WaiverLike(Protocol):
    """What the evaluator needs of a waiver (compliance.waivers.Waiver, or a dict in tests)."""

    waiver_id: str
    control_id: str
    framework_id: str | None
    asset_id: str


def _field(waiver: Any, name: str) -> Any:
    return waiver.get(name) if isinstance(waiver, Mapping) else getattr(waiver, name, None)


def waiver_for(waivers: Sequence[Any], framework_id: str, control_id: str, asset_id: str) -> str | None:
    """Id of the first waiver in force for this control (in this framework, or any framework)
    and asset; None when no waiver accepts the failure."""
    for waiver in waivers:
        framework = _field(waiver, "framework_id")
        if (
            _field(waiver, "control_id") == control_id
            and _field(waiver, "asset_id") == asset_id
            and (framework is None or framework == framework_id)
        ):
            return str(_field(waiver, "waiver_id"))
    return None


@dataclass(frozen=True)
class DataBasis:
    """What the warehouse was built from: site id -> snapshot id, and those snapshots' lake files."""

    snapshot_ids: dict[str, str]
    lake_files: list[str]


def data_basis(lake_dir: Path, connection=None) -> DataBasis:
    """The discovery snapshots the warehouse holds (sites.last_snapshot_id; the lake's newest
    site snapshots when the warehouse cannot say) plus the newest control store snapshot, and
    the relative paths of every lake file of those snapshots."""
    lake_dir = Path(lake_dir)
    snapshots: dict[str, str] = {}
    if connection is not None:
        try:
            snapshots = {str(s): str(i) for s, i in connection.execute("select site_id, last_snapshot_id from sites").fetchall()}
        except Exception:  # noqa: BLE001 - no sites table yet: fall back to the lake
            snapshots = {}
    if not snapshots:
        snapshots = latest_snapshot_ids(lake_dir, "sites")
    control = latest_snapshot_ids(lake_dir, "ai_tasks").get(CONTROL_SITE_ID)
    if control:
        snapshots[CONTROL_SITE_ID] = control
    files = sorted(
        path.relative_to(lake_dir).as_posix()
        for site, snapshot in snapshots.items()
        for path in (lake_dir / "raw").glob(f"*/site={site}/snapshot={snapshot}.parquet")
    )
    return DataBasis(dict(sorted(snapshots.items())), files)


def _evidence_id(run_id: str, evaluated_at: datetime, key: tuple[str, str, str]) -> str:
    text = "|".join([run_id, evaluated_at.isoformat(), *key])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def build_evidence(
    catalog: Catalog,
    results: Mapping[str, CheckResult],
    waivers: Sequence[Any],
    run_id: str,
    evaluated_at: datetime,
    basis: DataBasis,
    previous: Mapping[tuple[str, str, str], str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(evidence rows sealed into their chains, failure rows), one evidence row per mapping."""
    evidence, failures = [], []
    snapshot_ids = canonical_json(basis.snapshot_ids)
    for mapping in catalog.mappings():
        framework_id, control_id, check = mapping.framework.id, mapping.control.id, mapping.check
        result = results.get(check.id)
        if result is None:
            continue
        definition = canonical_json(check.document())
        evidence_id = _evidence_id(run_id, evaluated_at, (framework_id, control_id, check.id))
        applied = []
        for failure in result.failures:
            waiver_id = waiver_for(waivers, framework_id, control_id, failure.asset_id)
            if waiver_id:
                applied.append(waiver_id)
            failures.append(dict(zip(FAILURE_COLUMNS, (evidence_id, failure.asset_id, failure.site_id, failure.detail, waiver_id))))
        status = result.status
        if status == "fail" and len(applied) == len(result.failures):
            status = "waived"
        evidence.append({
            "evidence_id": evidence_id,
            "framework_id": framework_id,
            "control_id": control_id,
            "check_id": check.id,
            "check_kind": check.kind,
            "check_sha256": hashlib.sha256(definition.encode()).hexdigest(),
            "check_definition": definition,
            "evaluated_at": evaluated_at,
            "run_id": run_id,
            "snapshot_ids": snapshot_ids,
            "lake_files": list(basis.lake_files),
            "status": status,
            "checked_count": result.checked_count,
            "failing_count": len(result.failures),
            "waived_count": len(applied),
            "failing_asset_ids": result.failing_asset_ids,
            "waiver_ids": sorted(set(applied)),
            "error": result.error,
        })
    return seal(evidence, previous), failures


def _table(entity: str, rows: list[dict[str, Any]], snapshot_id: str) -> pa.Table:
    at = snapshot_time(snapshot_id)
    return pa.Table.from_pylist([dict(r, snapshot_id=snapshot_id, snapshot_at=at) for r in rows], schema=ENTITY_SCHEMAS[entity])


def write_evidence(
    lake_dir: Path, evidence: list[dict[str, Any]], failures: list[dict[str, Any]], evaluated_at: datetime
) -> list[SnapshotFile]:
    """Land one evaluation run: a control_evidence and a control_evidence_failures file."""
    snapshot_id = snapshot_id_for(evaluated_at)
    return write_snapshot(Path(lake_dir), EVIDENCE_SITE_ID, snapshot_id, {
        "control_evidence": _table("control_evidence", evidence, snapshot_id),
        "control_evidence_failures": _table("control_evidence_failures", failures, snapshot_id),
    })


def read_evidence(lake_dir: Path, until: datetime | None = None, entity: str = "control_evidence") -> list[dict[str, Any]]:
    """Every evidence row in the lake (or those evaluated up to `until`), oldest first, each
    with FILE_KEY = its file's path relative to the lake (what ChainBreak names)."""
    rows: list[dict[str, Any]] = []
    for file in list_snapshots(Path(lake_dir), entity):
        if until is not None and snapshot_time(file.snapshot_id) > until:
            continue
        relative = file.path.relative_to(Path(lake_dir)).as_posix()
        for row in pq.read_table(file.path).to_pylist():
            row[FILE_KEY] = relative
            rows.append(row)
    if entity == "control_evidence":
        rows.sort(key=lambda r: (r["evaluated_at"], r[FILE_KEY], r["evidence_id"]))
    return rows


def latest_hashes(lake_dir: Path) -> dict[tuple[str, str, str], str]:
    """sha256 of the newest evidence row of every (framework, control, check) in the lake."""
    latest: dict[tuple[str, str, str], tuple[datetime, str]] = {}
    columns = ["framework_id", "control_id", "check_id", "evaluated_at", "sha256"]
    for file in list_snapshots(Path(lake_dir), "control_evidence"):
        for row in pq.read_table(file.path, columns=columns).to_pylist():
            key = chain_key(row)
            if key not in latest or row["evaluated_at"] >= latest[key][0]:
                latest[key] = (row["evaluated_at"], row["sha256"])
    return {key: sha for key, (_, sha) in latest.items()}


def latest_evidence(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The newest row of each (framework, control, check), in catalog-independent key order."""
    newest: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for row in rows:
        key = chain_key(row)
        if key not in newest or row["evaluated_at"] >= newest[key]["evaluated_at"]:
            newest[key] = row
    return [newest[k] for k in sorted(newest)]


def definition_of(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(row.get("check_definition") or "{}")
    except json.JSONDecodeError:
        return {}


def evaluated_now(now: datetime | None = None) -> datetime:
    """UTC now, truncated to microseconds (what Parquet keeps), so a row hashes the same before
    and after its round trip through the lake."""
    moment = now or datetime.now(timezone.utc)
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment


__all__ = [
    "DataBasis", "EVIDENCE_COLUMNS", "FAILURE_COLUMNS", "build_evidence", "data_basis", "definition_of",
    "evaluated_now", "latest_evidence", "latest_hashes", "read_evidence", "waiver_for", "write_evidence",
]
