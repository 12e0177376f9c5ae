"""drift_sensor and approval_sensor."""

import warnings

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    sensor,
)

from qlrf_pipelines.jobs.remediation import execute_remediation_job, plan_remediation_job
from qlrf_pipelines.lake import latest_snapshot_ids
from qlrf_pipelines.planning.inputs import snapshot_key_of
from qlrf_pipelines.resources.control import ControlStoreResource
from qlrf_pipelines.resources.estate import EstateResource

DRIFT_ASSET = AssetKey(["drift_items"])

# Dagster's sensor decorators pass a beta parameter internally and warn on every import, in every
# worker process; the warning is about Dagster's API, not about anything a user can change.
warnings.filterwarnings("ignore", message=".*Parameter `owners` of initializer `SensorDefinition.*")


@asset_sensor(
    asset_key=DRIFT_ASSET,
    job=plan_remediation_job,
    name="drift_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    description="When drift_items is rebuilt, plan remediation once per set of lake snapshots.",
)
def drift_sensor(context: SensorEvaluationContext, asset_event: EventLogEntry, estate: EstateResource):
    snapshots = latest_snapshot_ids(estate.paths.lake_dir)
    if not snapshots:
        return SkipReason("drift_items was materialized but the lake has no snapshots")
    key = snapshot_key_of(snapshots)
    # The run key is the snapshot digest: a repeated or crashed tick never plans the same
    # snapshots twice, whatever the cursor says.
    return RunRequest(
        run_key=f"plan:{key}",
        run_config={"ops": {"plan_remediation": {"config": {"snapshot_key": key, "requested_by": "sensor:drift_sensor"}}}},
        tags={"qlrf/snapshot_key": key, "qlrf/trigger_run": asset_event.run_id},
    )


@sensor(
    job=execute_remediation_job,
    name="approval_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Start execution of every approved task, once per (task, plan hash).",
)
def approval_sensor(context: SensorEvaluationContext, control: ControlStoreResource):
    with control.open() as store:
        ready = store.approved_tasks()
    if not ready:
        return SkipReason("no approved tasks waiting")
    return [
        RunRequest(
            run_key=f"{task_id}:{plan_hash}",
            run_config={"ops": {"authorize_task": {"config": {"task_id": task_id, "plan_hash": plan_hash}}}},
            tags={"qlrf/task_id": task_id, "qlrf/plan_hash": plan_hash[:16]},
        )
        for task_id, plan_hash in ready
    ]
