"""One evaluation run, end to end: evaluate every check on the warehouse (read-only), apply the
waivers in force, seal the evidence into its chains and land it in the lake.

Callers (the refresh job's op and the `compliance_checks` asset check) pass the waivers they
read from the control store, so this module needs neither Dagster nor the store.
A control's status rolls its checks up, worst first: fail, error, not_assessed, waived, pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from qlrf_pipelines.compliance.catalog import Catalog, load_catalog
from qlrf_pipelines.compliance.evidence import (
    DataBasis,
    build_evidence,
    data_basis,
    evaluated_now,
    latest_hashes,
    write_evidence,
)
from qlrf_pipelines.compliance.runner import CheckResult, evaluate, unavailable
from qlrf_pipelines.lake import SnapshotFile

ROLLUP_ORDER = ("fail", "error", "not_assessed", "waived", "pass")


def rollup(statuses: Sequence[str]) -> str:
    """The worst status of a control's checks (pass only when every check passed)."""
    return min(statuses, key=ROLLUP_ORDER.index) if statuses else "not_assessed"


@dataclass
class Evaluation:
    catalog: Catalog
    results: dict[str, CheckResult]
    evidence: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    evaluated_at: datetime
    run_id: str
    basis: DataBasis
    files: list[SnapshotFile] = field(default_factory=list)

    def check_statuses(self) -> dict[str, list[str]]:
        """check id -> the statuses of its evidence rows (one per control it answers)."""
        statuses: dict[str, list[str]] = {}
        for row in self.evidence:
            statuses.setdefault(row["check_id"], []).append(row["status"])
        return statuses

    def controls(self) -> list[dict[str, Any]]:
        """One entry per (framework, control): rolled-up status, its checks' statuses and the
        failing ids no waiver accepted."""
        unwaived: dict[str, list[str]] = {}
        for failure in self.failures:
            if failure["waiver_id"] is None:
                unwaived.setdefault(failure["evidence_id"], []).append(failure["asset_id"])
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in self.evidence:
            grouped.setdefault((row["framework_id"], row["control_id"]), []).append(row)
        entries = []
        for (framework_id, control_id), rows in grouped.items():
            entries.append({
                "framework_id": framework_id,
                "control_id": control_id,
                "title": self.catalog.frameworks[framework_id].controls[control_id].title,
                "status": rollup([r["status"] for r in rows]),
                "checks": {r["check_id"]: r["status"] for r in rows},
                "failed_checks": [r["check_id"] for r in rows if r["status"] == "fail"],
                "failing_asset_ids": sorted({a for r in rows for a in unwaived.get(r["evidence_id"], [])}),
            })
        return entries

    def failed_controls(self) -> list[dict[str, Any]]:
        return [c for c in self.controls() if c["status"] == "fail"]

    def blocking_failures(self) -> list[str]:
        """Ids of blocking checks that failed (unwaived) or errored in this run."""
        statuses = self.check_statuses()
        return [
            check_id for check_id, check in self.catalog.checks.items()
            if check.blocking and any(s in ("fail", "error") for s in statuses.get(check_id, [self.results[check_id].status]))
        ]

    def counts(self) -> dict[str, int]:
        counts = {f"controls_{s}": 0 for s in ROLLUP_ORDER}
        for control in self.controls():
            counts[f"controls_{control['status']}"] += 1
        for status in ROLLUP_ORDER:
            counts[f"evidence_{status}"] = sum(1 for r in self.evidence if r["status"] == status)
        counts["evidence_rows"] = len(self.evidence)
        counts["failure_rows"] = len(self.failures)
        return counts


def evaluate_and_record(
    warehouse_path: Path,
    lake_dir: Path,
    run_id: str,
    waivers: Sequence[Any] = (),
    catalog: Catalog | None = None,
    now: datetime | None = None,
    write: bool = True,
) -> Evaluation:
    """Evaluate, build the evidence (chained to the newest evidence in the lake) and land it.

    The warehouse is opened read-only once for the checks and the data basis; if it cannot be
    opened every check is evidence of status `error` naming why.
    """
    from qlrf_pipelines.warehouse import WarehouseError, read_only

    catalog = catalog or load_catalog()
    evaluated_at = evaluated_now(now)
    try:
        with read_only(Path(warehouse_path)) as connection:
            results = evaluate(connection, catalog, evaluated_at)
            basis = data_basis(lake_dir, connection)
    except WarehouseError as exc:
        results = unavailable(catalog, f"warehouse unavailable: {exc}")
        basis = data_basis(lake_dir)
    evidence, failures = build_evidence(
        catalog, results, list(waivers), run_id, evaluated_at, basis, latest_hashes(lake_dir)
    )
    evaluation = Evaluation(catalog, results, evidence, failures, evaluated_at, run_id, basis)
    if write:
        evaluation.files = write_evidence(lake_dir, evidence, failures, evaluated_at)
    return evaluation
