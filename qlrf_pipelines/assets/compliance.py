"""Compliance checks as Dagster asset checks, and the evidence they write.

Every check of the catalog is an asset check on the warehouse table it checks (`asset` in the
catalog), named by its id and `blocking` as the catalog says. They are declared together in the
`compliance_checks` multi-asset check, which can be run on its own from the UI; the refresh job
runs the same evaluation in its `evaluate_compliance` op (jobs/refresh.py) right after the
warehouse build. Both land the evidence in the lake, report one check evaluation per check and
one materialization of `control_evidence` whose metadata lists the failed (unwaived) controls,
which is what the compliance sensor reads (it never opens the warehouse).

Check evaluation semantics: `pass` passes; `fail` and `error` fail with severity ERROR (a
blocking one stops what depends on it in the same run); `waived` (every failure accepted by a
waiver) and `not_assessed` do not pass, with severity WARN.
"""


from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetMaterialization,
    Failure,
    MetadataValue,
    multi_asset_check,
)

from qlrf_pipelines.assets.discovery import lake_asset_key
from qlrf_pipelines.assets.warehouse import WAREHOUSE_POOL
from qlrf_pipelines.compliance.catalog import Catalog, CatalogError, load_catalog
from qlrf_pipelines.compliance.evaluate import Evaluation, evaluate_and_record, rollup
from qlrf_pipelines.resources.control import ControlStoreResource
from qlrf_pipelines.resources.estate import EstateResource

EVIDENCE_ASSET = AssetKey(["control_evidence"])
FAILED_CONTROLS_KEY = "failed_controls"  # metadata key the compliance sensor reads
SHOWN_IDS = 20


def spec_catalog(log=None) -> Catalog:
    """The catalog the asset check specs are declared from: bundled plus the user's files; if a
    user file is invalid, the bundled catalog alone (the run that evaluates reports the error)."""
    try:
        return load_catalog()
    except CatalogError as exc:
        if log is not None:
            log.warning(f"compliance catalog invalid, declaring the bundled checks only: {exc}")
        return load_catalog(environ={})


def check_specs(catalog: Catalog) -> list[AssetCheckSpec]:
    specs = []
    for check in catalog.checks.values():
        controls = ", ".join(f"{fw} {control}" for fw, control in catalog.controls_of(check.id)) or "no control"
        specs.append(AssetCheckSpec(
            check.id,
            asset=AssetKey([check.asset]),
            description=f"{check.title}. {check.description} Evidence for: {controls}.",
            blocking=check.blocking,
            metadata={"kind": check.kind, "controls": controls},
        ))
    return specs


def load_waivers(control: ControlStoreResource, on: datetime, log) -> list[Any]:
    """Waivers in force on the evaluation day; none when there is no control store yet."""
    from qlrf_pipelines.control_export import sqlite_store_missing

    if sqlite_store_missing(control.url, Path(control.home)):
        return []
    with control.open() as store:
        waivers = list(store.waivers_in_force(on.date()))
    log.info(f"{len(waivers)} compliance waiver(s) in force on {on.date().isoformat()}")
    return waivers


def run_evaluation(estate: EstateResource, control: ControlStoreResource, run_id: str, log) -> Evaluation:
    """Evaluate every check on the warehouse and land the evidence; a catalog that cannot be
    read fails (nothing is evaluated against a mapping nobody can see)."""
    from qlrf_pipelines.compliance.evidence import evaluated_now

    try:
        catalog = load_catalog(estate.compliance_catalog_files)
    except CatalogError as exc:
        raise Failure(f"compliance catalog invalid, nothing evaluated: {exc}") from None
    now = evaluated_now()
    waivers = load_waivers(control, now, log)
    evaluation = evaluate_and_record(
        estate.paths.warehouse_path, estate.paths.lake_dir, run_id, waivers=waivers, catalog=catalog, now=now
    )
    counts = evaluation.counts()
    log.info(
        f"compliance: {counts['evidence_rows']} evidence rows; controls pass {counts['controls_pass']}, "
        f"fail {counts['controls_fail']}, waived {counts['controls_waived']}, error {counts['controls_error']}, "
        f"not assessed {counts['controls_not_assessed']}"
    )
    for check_id, result in evaluation.results.items():
        if result.status == "error":
            log.error(f"compliance check {check_id} errored: {result.error}")
    return evaluation


def _check_outcome(evaluation: Evaluation, check_id: str) -> tuple[str, dict[str, Any]]:
    """(status over the check's controls, metadata) of one check."""
    result = evaluation.results[check_id]
    statuses = evaluation.check_statuses().get(check_id) or [result.status]
    status = rollup(statuses)
    rows = [r for r in evaluation.evidence if r["check_id"] == check_id]
    ids = result.failing_asset_ids
    metadata: dict[str, Any] = {
        "status": status,
        "checked_count": MetadataValue.int(result.checked_count),
        "failing_count": MetadataValue.int(len(ids)),
        "waived_count": MetadataValue.int(max((r["waived_count"] for r in rows), default=0)),
        "failing_asset_ids": MetadataValue.json(ids[:SHOWN_IDS] + ([f"... {len(ids) - SHOWN_IDS} more"] if len(ids) > SHOWN_IDS else [])),
        "controls": MetadataValue.json({f"{r['framework_id']}/{r['control_id']}": r["status"] for r in rows}),
        "evidence_ids": MetadataValue.json([r["evidence_id"] for r in rows]),
        "check_sha256": rows[0]["check_sha256"] if rows else "",
        "duration_ms": MetadataValue.int(result.duration_ms),
    }
    if result.error:
        metadata["error" if status == "error" else "reason"] = result.error
    return status, metadata


def _severity(status: str) -> AssetCheckSeverity:
    return AssetCheckSeverity.ERROR if status in ("fail", "error") else AssetCheckSeverity.WARN


def _description(status: str, metadata: dict[str, Any]) -> str:
    failing = metadata["failing_count"].value
    if status == "pass":
        return f"passed on {metadata['checked_count'].value} checked"
    if status == "waived":
        return f"{failing} failing, all accepted by waivers (waived, not passed)"
    if status in ("error", "not_assessed"):
        return f"{status}: {metadata.get('error') or metadata.get('reason')}"
    return f"{failing} failing of {metadata['checked_count'].value} checked"


def check_evaluations(evaluation: Evaluation) -> Iterator[AssetCheckEvaluation]:
    """One evaluation per check, for an op (the refresh job)."""
    for check_id, result in evaluation.results.items():
        status, metadata = _check_outcome(evaluation, check_id)
        yield AssetCheckEvaluation(
            asset_key=AssetKey([result.check.asset]),
            check_name=check_id,
            passed=status == "pass",
            metadata=metadata,
            severity=_severity(status),
            description=_description(status, metadata),
            blocking=result.check.blocking,
        )


def evidence_events(evaluation: Evaluation) -> list[AssetMaterialization]:
    """The control_evidence materialization (failed controls for the sensor, counts) and one per
    evidence lake file."""
    failed = [
        {k: c[k] for k in ("framework_id", "control_id", "title", "failed_checks", "failing_asset_ids")}
        for c in evaluation.failed_controls()
    ]
    snapshot_id = evaluation.files[0].snapshot_id if evaluation.files else ""
    metadata: dict[str, Any] = {
        FAILED_CONTROLS_KEY: MetadataValue.json(failed),
        "failed_control_ids": MetadataValue.json([f"{c['framework_id']}/{c['control_id']}" for c in failed]),
        "blocking_failures": MetadataValue.json(evaluation.blocking_failures()),
        "evaluated_at": evaluation.evaluated_at.isoformat(),
        "evidence_snapshot_id": snapshot_id,
        "catalog_sha256": evaluation.catalog.sha256,
        **{name: MetadataValue.int(value) for name, value in evaluation.counts().items()},
    }
    events = [AssetMaterialization(asset_key=EVIDENCE_ASSET, metadata=metadata, description="compliance evaluation")]
    for file in evaluation.files:
        events.append(AssetMaterialization(
            asset_key=lake_asset_key(file.entity),
            metadata={"site_id": file.site_id, "snapshot_id": file.snapshot_id, "rows": MetadataValue.int(file.rows),
                      "path": MetadataValue.path(str(file.path))},
        ))
    return events


def build_compliance_checks(catalog: Catalog):
    @multi_asset_check(
        name="compliance_checks",
        specs=check_specs(catalog),
        can_subset=True,  # a run that selects some checks still evaluates (and evidences) all of them
        pool=WAREHOUSE_POOL,
        description="Evaluate every compliance check on the warehouse and land the evidence in the lake.",
    )
    def compliance_checks(
        context: AssetCheckExecutionContext, estate: EstateResource, control: ControlStoreResource
    ) -> Iterator[AssetCheckResult]:
        evaluation = run_evaluation(estate, control, context.run.run_id, context.log)
        for event in evidence_events(evaluation):
            context.op_execution_context.log_event(event)
        declared = {spec.key.name: spec.key.asset_key for spec in check_specs(catalog)}
        selected = {key.name for key in context.selected_asset_check_keys}
        declared = {name: key for name, key in declared.items() if name in selected}
        for check_id, asset_key in declared.items():
            if check_id not in evaluation.results:
                yield AssetCheckResult(
                    asset_key=asset_key, check_name=check_id, passed=False, severity=AssetCheckSeverity.WARN,
                    description="no longer in the compliance catalog; reload the code location",
                )
                continue
            status, metadata = _check_outcome(evaluation, check_id)
            yield AssetCheckResult(
                asset_key=asset_key, check_name=check_id, passed=status == "pass", metadata=metadata,
                severity=_severity(status), description=_description(status, metadata),
            )
        for check_id in sorted(set(evaluation.results) - {spec.key.name for spec in check_specs(catalog)}):
            context.log.warning(f"check {check_id} is new in the catalog; reload the code location to see it as an asset check")

    return compliance_checks
