"""The remediation loop end to end, in-process, on a copy of the sample estate's warehouse:
sensor tick -> planning run -> tasks pending -> approval from the CLI -> sensor tick ->
execution run -> task succeeded -> audit chain verifies. Plus the refusals and the rollback."""

import json
from datetime import datetime, timezone
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dagster import DagsterEventType, RunRequest, SkipReason, build_sensor_context

from qlrf_pipelines.control.store import ControlStore
from qlrf_pipelines.lake import list_snapshots, read_snapshot, snapshot_id_for, write_snapshot
from qlrf_pipelines.planning.plan import parse_plan

pytestmark = pytest.mark.integration
QLRF = str(Path(sys.executable).parent / "qlrf")


@pytest.fixture
def loop_home(sample_runs, tmp_path, monkeypatch):
    """A private copy of the sample estate's lake and warehouse; the control store starts empty."""
    home = tmp_path / "home"
    shutil.copytree(sample_runs.home / "lake", home / "lake")
    shutil.copy(sample_runs.home / "warehouse.duckdb", home / "warehouse.duckdb")
    for name in ("QLRF_SITES", "QLRF_CONTROL_URL", "QLRF_RBAC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QLRF_HOME", str(home))
    return home


@pytest.fixture
def defs(loop_home, prepared_manifest):
    from qlrf_pipelines.definitions import build_definitions

    return build_definitions()


def qlrf(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([QLRF, "--home", str(home), *args], capture_output=True, text=True, timeout=300)


def tick(defs, instance, name: str, cursor: str | None = None):
    sensor = defs.resolve_sensor_def(name)
    context = build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources, sensor_name=name
    )
    return sensor.evaluate_tick(context)


def run_request(defs, instance, request: RunRequest, job_name: str):
    job = defs.resolve_job_def(job_name)
    tags = dict(request.tags) | {"dagster/run_key": request.run_key}
    return job.execute_in_process(
        run_config=request.run_config, tags=tags, instance=instance, resources=defs.resources, raise_on_error=False
    )


def plan_tasks(defs, instance) -> list:
    data = tick(defs, instance, "drift_sensor")
    assert len(data.run_requests) == 1
    result = run_request(defs, instance, data.run_requests[0], "plan_remediation_job")
    assert result.success
    with ControlStore.open(home=Path(defs.resources["estate"].home)) as store:
        return store.list_tasks()


def test_drift_sensor_plans_once_per_snapshot(defs, dagster_instance):
    first = tick(defs, dagster_instance, "drift_sensor")
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key.startswith("plan:")
    config = request.run_config["ops"]["plan_remediation"]["config"]
    assert config["requested_by"] == "sensor:drift_sensor"
    # The cursor moved past the materialization: the next tick asks for nothing.
    again = tick(defs, dagster_instance, "drift_sensor", cursor=first.cursor)
    assert not again.run_requests and again.skip_message
    # A tick that crashed before saving its cursor asks again, with the same run key.
    retried = tick(defs, dagster_instance, "drift_sensor")
    assert retried.run_requests[0].run_key == request.run_key


def test_whole_loop_from_drift_to_succeeded_task(defs, dagster_instance, loop_home):
    tasks = plan_tasks(defs, dagster_instance)
    pending = [t for t in tasks if t.status == "pending_approval"]
    assert len(pending) >= 10
    task = next(t for t in pending if t.site_id == "aws-prod-use1" and t.family == "ubuntu-22.04-base")
    plan = task.plan()
    assert task.requested_by == "sensor:drift_sensor" and task.plan_hash == plan.plan_hash()
    assert plan.phases[0].kind == "canary" and all(v.allowed for v in task.verdicts)
    assert {v.stage for v in task.verdicts} == {"schema", "policy", "safety"}
    assert "to 1.3.0" in plan.change

    listed = json.loads(qlrf(loop_home, "tasks", "list", "--status", "pending_approval", "--json").stdout)
    assert task.task_id in {t["task_id"] for t in listed}
    shown = qlrf(loop_home, "tasks", "show", task.task_id)
    assert "canary" in shown.stdout and task.plan_hash in shown.stdout

    # Nothing runs before a person approves.
    assert tick(defs, dagster_instance, "approval_sensor").skip_message
    approved = qlrf(loop_home, "tasks", "approve", task.task_id, "--user", "alice", "--reason", "CAB-4711")
    assert approved.returncode == 0, approved.stderr

    data = tick(defs, dagster_instance, "approval_sensor")
    assert [r.run_key for r in data.run_requests] == [f"{task.task_id}:{task.plan_hash}"]
    assert tick(defs, dagster_instance, "approval_sensor").run_requests[0].run_key == data.run_requests[0].run_key
    result = run_request(defs, dagster_instance, data.run_requests[0], "execute_remediation_job")
    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_SUCCESS}
    assert {"authorize_task", "phase_1", "phase_2", "finish_task"} <= steps
    assert "rollback" not in steps

    with ControlStore.open(home=loop_home) as store:
        done = store.get_task(task.task_id)
        actions = store.actions(task.task_id)
    assert done.status == "succeeded"
    assert len(actions) == len(plan.targets) and all(a["dry_run"] for a in actions)
    assert all("ec2.create_replace_root_volume_task" in a["details"]["call"] for a in actions)
    # Executed once: the approval sensor has nothing left to start.
    assert tick(defs, dagster_instance, "approval_sensor").skip_message

    verified = qlrf(loop_home, "audit", "verify")
    assert verified.returncode == 0 and "audit chain ok" in verified.stdout
    events = [e["action"] for e in json.loads(qlrf(loop_home, "audit", "list", "--task", task.task_id, "--json").stdout)]
    for action in ("created", "validated", "approved", "started", "phase_done", "finished"):
        assert action in events


def test_refused_approvals_and_stale_plans(defs, dagster_instance, loop_home):
    tasks = [t for t in plan_tasks(defs, dagster_instance) if t.status == "pending_approval"]
    first, second = tasks[0], tasks[1]
    own = qlrf(loop_home, "tasks", "approve", first.task_id, "--user", "sensor:drift_sensor", "--reason", "mine")
    assert own.returncode != 0
    no_role = qlrf(loop_home, "tasks", "approve", first.task_id, "--user", "bob", "--reason", "ops")
    assert no_role.returncode != 0 and "APPROVE_AI_TASKS" in no_role.stderr

    # Approve, then modify: the approval no longer counts and the editor cannot approve.
    assert qlrf(loop_home, "tasks", "approve", first.task_id, "--user", "alice", "--reason", "ok").returncode == 0
    plan = json.loads(qlrf(loop_home, "tasks", "show", first.task_id, "--json").stdout)["plan"]
    plan["task"]["intent"] += " (reviewed by ops)"
    plan_file = loop_home / "edited.json"
    plan_file.write_text(json.dumps(plan))
    modified = qlrf(loop_home, "tasks", "modify", first.task_id, "--user", "bob", "--plan-file", str(plan_file))
    assert modified.returncode == 0, modified.stderr
    assert "pending_approval" in modified.stdout
    assert not tick(defs, dagster_instance, "approval_sensor").run_requests

    # A plan edited directly in the store after approval is refused before any action.
    assert qlrf(loop_home, "tasks", "approve", second.task_id, "--user", "alice", "--reason", "ok").returncode == 0
    request = tick(defs, dagster_instance, "approval_sensor").run_requests[0]
    with sqlite3.connect(loop_home / "control.sqlite") as db:
        stored = db.execute("SELECT plan_json FROM task_plans WHERE task_id = ?", (second.task_id,)).fetchone()[0]
        tampered = json.loads(stored)
        tampered["targets"] = tampered["targets"][:1]
        db.execute("UPDATE task_plans SET plan_json = ? WHERE task_id = ?", (json.dumps(tampered), second.task_id))
    result = run_request(defs, dagster_instance, request, "execute_remediation_job")
    assert not result.success
    with ControlStore.open(home=loop_home) as store:
        assert store.actions(second.task_id) == []
        assert store.audit_events(second.task_id)[-1]["action"] == "execution_refused"


def test_failed_canary_health_check_rolls_back(defs, dagster_instance, loop_home):
    tasks = [t for t in plan_tasks(defs, dagster_instance) if t.status == "pending_approval"]
    task = next(t for t in tasks if t.environment == "production" and len(t.plan().phases) >= 2)
    plan = task.plan()
    canary_asset = plan.phases[0].asset_ids[0]

    # The canary asset goes down: a newer discovery snapshot of its site shows it stopped.
    lake = loop_home / "lake"
    moment = datetime.now(timezone.utc)
    snapshot = snapshot_id_for(moment)
    tables = {}
    for entity in ("sites", "assets", "images"):
        table = read_snapshot(list_snapshots(lake, entity, plan.site_id)[-1].path)
        rows = table.num_rows
        table = table.set_column(0, table.schema.field(0), pa.array([snapshot] * rows, pa.string()))
        table = table.set_column(1, table.schema.field(1), pa.array([moment] * rows, table.schema.field(1).type))
        if entity == "assets":
            state = pc.if_else(pc.equal(table["asset_id"], canary_asset), "stopped", table["state"])
            table = table.set_column(table.schema.get_field_index("state"), "state", state)
        tables[entity] = table
    write_snapshot(lake, plan.site_id, snapshot, tables)

    with ControlStore.open(home=loop_home) as store:
        from qlrf_pipelines.control.rbac import Rbac

        store.approve(task.task_id, "alice", "go", Rbac.load())
    request = tick(defs, dagster_instance, "approval_sensor").run_requests[0]
    result = run_request(defs, dagster_instance, request, "execute_remediation_job")
    assert not result.success
    skipped = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_SKIPPED}
    succeeded = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_SUCCESS}
    assert "phase_2" in skipped and {"phase_1", "rollback"} <= succeeded
    with ControlStore.open(home=loop_home) as store:
        finished = store.get_task(task.task_id)
        actions = store.actions(task.task_id)
        verification = store.verify_audit()
    assert finished.status == "rolled_back"
    assert [(a["phase"], a["asset_id"], a["action"]) for a in actions] == [
        ("canary", canary_asset, "replace_image"), ("canary", canary_asset, "restore_image"),
    ]
    assert verification.ok


def test_audit_tampering_is_detected(defs, dagster_instance, loop_home):
    plan_tasks(defs, dagster_instance)
    with sqlite3.connect(loop_home / "control.sqlite") as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    verified = qlrf(loop_home, "audit", "verify")
    assert verified.returncode == 1
    assert "seq 3" in verified.stderr
