"""compliance_sensor: failed compliance controls start remediation planning, like drift does.

The evaluation (jobs/refresh.py `evaluate_compliance`, or the `compliance_checks` asset check)
materializes `control_evidence` with the failed, unwaived controls in its metadata; this sensor
reads only that event (and the lake's file names, for the snapshot key), never the warehouse.

Only failures the planner can fix start a run: the planner moves assets to the current golden
image, which answers the image-drift-backed checks (REMEDIABLE_CHECKS). Everything else (an
unencrypted disk, a missing tag, a stale drill) needs a person, and the skip reason names those
controls. The plan job is the one drift_sensor starts, with the same approval rules: every plan
waits in pending_approval. One request per evidence snapshot (the run key), and none when a plan
run for the same lake snapshots already exists (drift_sensor usually got there first).
"""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
)

from qlrf_pipelines.jobs.remediation import plan_remediation_job
from qlrf_pipelines.lake import latest_snapshot_ids
from qlrf_pipelines.planning.inputs import snapshot_key_of
from qlrf_pipelines.resources.estate import EstateResource

EVIDENCE_ASSET = AssetKey(["control_evidence"])
FAILED_CONTROLS_KEY = "failed_controls"  # written by assets/compliance.py evidence_events
REQUESTED_BY = "sensor:compliance_sensor"
SNAPSHOT_KEY_TAG = "qlrf/snapshot_key"
# Checks backed by image drift: moving assets to the current golden image (what the planner
# plans) makes them pass.
REMEDIABLE_CHECKS = frozenset({"no_open_high_image_drift", "no_fixable_critical_cve_in_production"})


def _metadata_value(event: EventLogEntry, key: str) -> Any:
    materialization = event.asset_materialization
    value = materialization.metadata.get(key) if materialization is not None else None
    return getattr(value, "value", value)


def _label(control: dict[str, Any]) -> str:
    return f"{control.get('framework_id')}/{control.get('control_id')} ({len(control.get('failing_asset_ids') or [])} assets)"


def split_failed_controls(failed: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(controls the planner can remediate, controls that need people)."""
    remediable = [c for c in failed if REMEDIABLE_CHECKS & set(c.get("failed_checks") or [])]
    return remediable, [c for c in failed if c not in remediable]


def _existing_plan_run(context: SensorEvaluationContext, snapshot_key: str):
    runs = context.instance.get_runs(
        filters=RunsFilter(job_name=plan_remediation_job.name, tags={SNAPSHOT_KEY_TAG: snapshot_key}), limit=1
    )
    return runs[0] if runs else None


@asset_sensor(
    asset_key=EVIDENCE_ASSET,
    job=plan_remediation_job,
    name="compliance_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    description="When compliance evidence shows a failed control the planner can fix (image drift, fixable "
    "critical CVEs), plan remediation once per evidence snapshot; every plan waits for approval.",
)
def compliance_sensor(context: SensorEvaluationContext, asset_event: EventLogEntry, estate: EstateResource):
    failed = _metadata_value(asset_event, FAILED_CONTROLS_KEY)
    evidence_snapshot = _metadata_value(asset_event, "evidence_snapshot_id") or asset_event.run_id
    if failed is None:
        return SkipReason(f"the control_evidence materialization of run {asset_event.run_id} has no {FAILED_CONTROLS_KEY}")
    if not failed:
        return SkipReason(f"evidence {evidence_snapshot}: no failed (unwaived) control")
    remediable, for_people = split_failed_controls(list(failed))
    people = "; ".join(_label(c) for c in for_people)
    if not remediable:
        return SkipReason(
            f"evidence {evidence_snapshot}: no failed control can be remediated by the planner (it fixes image drift); "
            f"these need people: {people}"
        )
    snapshots = latest_snapshot_ids(estate.paths.lake_dir)
    if not snapshots:
        return SkipReason("control_evidence was materialized but the lake has no site snapshots")
    key = snapshot_key_of(snapshots)
    controls = ", ".join(f"{c['framework_id']}/{c['control_id']}" for c in remediable)
    existing = _existing_plan_run(context, key)
    if existing is not None:
        return SkipReason(
            f"evidence {evidence_snapshot}: remediation of {controls} is already planned for these snapshots "
            f"(run {existing.run_id}, {existing.tags.get('dagster/sensor_name') or 'manual'})"
            + (f"; these need people: {people}" if people else "")
        )
    if people:
        context.log.info(f"not remediable by the planner, these need people: {people}")
    return RunRequest(
        run_key=f"compliance:{evidence_snapshot}",
        run_config={"ops": {"plan_remediation": {"config": {"snapshot_key": key, "requested_by": REQUESTED_BY}}}},
        tags={
            SNAPSHOT_KEY_TAG: key,
            "qlrf/trigger_run": asset_event.run_id,
            "qlrf/evidence_snapshot_id": str(evidence_snapshot),
            "qlrf/failed_controls": controls[:200],
        },
    )
