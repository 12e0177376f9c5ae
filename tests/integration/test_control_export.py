"""The control store reaches the warehouse through the lake: export_control_store lands one
snapshot of ai_tasks / ai_task_plans / ai_tool_invocations under site "control", and `dbt build`
turns the latest one into the contract tables of the same names. A lake with no control snapshot
yet (discovery only) still builds, with the three tables empty but typed.

Arrange: a SQLite control store in a temporary directory with two tasks (one modified to a second
plan version and approved, one denied by policy) and two tool calls, exported twice (the first
export holds only the first task, so the tables must come from the latest export), beside the
tiny hand-made lake of dbt_lake_fixture. Act: export, then dbt build. Assert: SQL on the tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, build_op_context, materialize

from qlrf_pipelines.assets.control_export import control_store_export
from qlrf_pipelines.compliance import waivers
from qlrf_pipelines.control import ControlStore, Rbac, image_registry
from qlrf_pipelines.control_export import CONTROL_ENTITIES, CONTROL_SITE_ID, export_control_store
from qlrf_pipelines.jobs.refresh import export_control_store as export_control_store_op
from qlrf_pipelines.images.catalog import LakeImageCatalog
from qlrf_pipelines.lake import list_snapshots, snapshot_id_for
from qlrf_pipelines.models.records import ENTITY_SCHEMAS, SNAPSHOT_FIELDS
from qlrf_pipelines.planning.plan import Plan
from qlrf_pipelines.resources.control import BUNDLED_RBAC_FILE, ControlStoreResource
from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from tests.integration.dbt_lake_fixture import build_tiny_lake
from tests.integration.test_dbt_models import rows, run_dbt_build
from tests.unit.test_control_store import allowed_verdicts, denied_verdicts, make_plan

pytestmark = pytest.mark.integration

AI_TABLES = ("ai_tasks", "ai_task_plans", "ai_tool_invocations")
FIRST_EXPORT_AT = datetime(2026, 11, 1, 5, 0, tzinfo=timezone.utc)
LATEST_EXPORT_AT = datetime(2026, 11, 1, 7, 0, tzinfo=timezone.utc)


def three_phase_plan() -> Plan:
    """make_plan's targets, rolled out in three phases (canary, then one asset per wave)."""
    data = make_plan(to_version="1.5.0").model_dump(mode="json")
    checks = data["phases"][0]["health_checks"]
    data["phases"] = [
        {"name": "canary", "kind": "canary", "asset_ids": ["i-001"], "health_checks": checks},
        {"name": "wave-1", "kind": "wave", "asset_ids": ["i-002"], "health_checks": checks},
        {"name": "wave-2", "kind": "wave", "asset_ids": ["i-003"], "health_checks": checks},
    ]
    return Plan.model_validate(data)


@dataclass
class Estate:
    tmp: Path
    lake_dir: Path
    warehouse: Path
    tasks: dict[str, str]  # role in the scenario -> task id
    plan_hashes: dict[tuple[str, int], str]
    files: list


def fill_store(store: ControlStore, lake_dir: Path) -> tuple[dict[str, str], list]:
    """The scenario; exports once after the first task and returns the latest export's files."""
    rbac = Rbac.load()
    approved = store.create_task(make_plan(), allowed_verdicts(), requested_by="drift_sensor", dedupe_key="k-1")
    store.record_tool_invocation(approved.task_id, "drift_items", {"site_id": "aws-prod-use1"}, 3, 41, 1, run_id="plan-run-1")
    export_control_store(store, lake_dir, now=FIRST_EXPORT_AT)  # an older, smaller copy
    store.modify_plan(approved.task_id, three_phase_plan(), allowed_verdicts(), user="bob", rbac=rbac)
    store.approve(approved.task_id, "alice", "canary first, looks right", rbac)
    denied = store.create_task(make_plan(site_id="aws-stg-euw1"), denied_verdicts(), requested_by="carol")
    store.record_tool_invocation(None, "golden_image_families", {}, 7, 5, 2, run_id="plan-run-2")
    registry = LakeImageCatalog()  # images not discovered in this lake: registered ahead of discovery
    image_registry.link(store, registry, "app@2", "app@1", "patched_from", "bob", "rebuilt on 1", rbac, allow_unknown=True)
    image_registry.promote(store, registry, "app@2", "production", "alice", "canary ok", rbac, allow_unknown=True)
    waivers.add(store, {"nist-800-53": {"CM-2"}}, "CM-2", ["i-001"], date(2099, 12, 31), "erin",
                "appliance image pinned by the vendor", rbac)
    files = export_control_store(store, lake_dir, now=LATEST_EXPORT_AT)
    return {"approved": approved.task_id, "denied": denied.task_id}, files


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> Estate:
    tmp = tmp_path_factory.mktemp("qlrf-control")
    lake = build_tiny_lake(tmp / "lake")
    with ControlStore.open(home=tmp / "home") as store:
        tasks, files = fill_store(store, lake.lake_dir)
        hashes = {(p.task_id, p.version): p.plan_hash for t in tasks.values() for p in store.plan_history(t)}
    warehouse = tmp / "warehouse.duckdb"
    run_dbt_build(tmp, lake.lake_dir, warehouse)
    return Estate(tmp, lake.lake_dir, warehouse, tasks, hashes, files)


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory) -> Path:
    """The tiny lake with no control snapshot at all (discovery only)."""
    tmp = tmp_path_factory.mktemp("qlrf-no-control")
    lake = build_tiny_lake(tmp / "lake")
    warehouse = tmp / "warehouse.duckdb"
    run_dbt_build(tmp, lake.lake_dir, warehouse)
    assert not (lake.lake_dir / "raw" / "ai_tasks").exists()
    return warehouse


def column_types(warehouse: Path, table: str) -> list[tuple[str, str]]:
    return rows(
        warehouse,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    )


# ----------------------------------------------------------------- the lake files
def test_schemas_hold_exactly_what_the_store_exports(tmp_path):
    with ControlStore.open(home=tmp_path) as store:
        fill_store(store, tmp_path / "lake")
        exported = store.export_rows()
    snapshot_columns = {f.name for f in SNAPSHOT_FIELDS}
    for entity in CONTROL_ENTITIES:
        assert exported[entity], entity
        for row in exported[entity]:
            assert set(row) == set(ENTITY_SCHEMAS[entity].names) - snapshot_columns, entity


def test_export_lands_one_typed_snapshot_of_three_files(estate):
    assert {f.entity for f in estate.files} == set(CONTROL_ENTITIES)
    assert {f.site_id for f in estate.files} == {CONTROL_SITE_ID}
    assert {f.snapshot_id for f in estate.files} == {snapshot_id_for(LATEST_EXPORT_AT)}
    by_entity = {f.entity: f for f in estate.files}
    assert (by_entity["ai_tasks"].rows, by_entity["ai_task_plans"].rows, by_entity["ai_tool_invocations"].rows) == (2, 3, 2)
    tasks = pq.read_table(by_entity["ai_tasks"].path)
    assert str(tasks.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert str(tasks.schema.field("plan_version").type) == "int32"
    assert str(tasks.schema.field("plan_valid").type) == "bool"
    assert by_entity["ai_tasks"].path == (
        estate.lake_dir / "raw" / "ai_tasks" / "site=control" / f"snapshot={snapshot_id_for(LATEST_EXPORT_AT)}.parquet"
    )
    # Two exports, two snapshots of each entity: history is kept, nothing overwritten.
    for entity in CONTROL_ENTITIES:
        assert len(list_snapshots(estate.lake_dir, entity, CONTROL_SITE_ID)) == 2


def test_an_empty_store_still_lands_every_file(tmp_path):
    with ControlStore.open(home=tmp_path) as store:
        files = export_control_store(store, tmp_path / "lake")
    assert sorted((f.entity, f.rows) for f in files) == sorted((e, 0) for e in CONTROL_ENTITIES)
    assert all(f.path.exists() for f in files)
    assert pq.read_table(files[0].path).schema.equals(ENTITY_SCHEMAS[files[0].entity])


# ----------------------------------------------------------------- the warehouse
def test_ai_tasks_hold_the_latest_export(estate):
    found = rows(
        estate.warehouse,
        "SELECT task_id, status, requested_by, site_id, environment, family, plan_version, plan_hash, plan_valid, "
        "approved_by, approved_at IS NOT NULL, approval_expires_at > approved_at, created_at <= updated_at, "
        "control_snapshot_id FROM ai_tasks ORDER BY task_id",
    )
    approved, denied = estate.tasks["approved"], estate.tasks["denied"]
    latest = snapshot_id_for(LATEST_EXPORT_AT)
    assert found == [
        (approved, "approved", "drift_sensor", "aws-prod-use1", "production", "web-base", 2,
         estate.plan_hashes[(approved, 2)], True, "alice", True, True, True, latest),
        (denied, "policy_denied", "carol", "aws-stg-euw1", "production", "web-base", 1,
         estate.plan_hashes[(denied, 1)], False, None, False, None, True, latest),
    ]


def test_ai_task_plans_keep_every_version_with_sizes_from_the_json(estate):
    found = rows(
        estate.warehouse,
        "SELECT task_id, version, is_current, valid, created_by, plan_hash, target_count, phase_count "
        "FROM ai_task_plans ORDER BY task_id, version",
    )
    approved, denied = estate.tasks["approved"], estate.tasks["denied"]
    assert found == [
        (approved, 1, False, True, "drift_sensor", estate.plan_hashes[(approved, 1)], 3, 2),
        (approved, 2, True, True, "bob", estate.plan_hashes[(approved, 2)], 3, 3),
        (denied, 1, True, False, "carol", estate.plan_hashes[(denied, 1)], 3, 2),
    ]
    (plan_json, verdicts_json), = rows(
        estate.warehouse, "SELECT plan_json, verdicts_json FROM ai_task_plans WHERE task_id = ? AND version = 1", [denied]
    )
    assert json.loads(plan_json)["site_id"] == "aws-stg-euw1"
    assert [v["allowed"] for v in json.loads(verdicts_json)] == [True, False]


def test_ai_tool_invocations_keep_every_call(estate):
    found = rows(
        estate.warehouse,
        "SELECT task_id, run_id, tool, step, arguments_json, result_size, duration_ms, invoked_at IS NOT NULL "
        "FROM ai_tool_invocations ORDER BY invocation_id",
    )
    assert found == [
        (estate.tasks["approved"], "plan-run-1", "drift_items", 1, '{"site_id":"aws-prod-use1"}', 3, 41, True),
        (None, "plan-run-2", "golden_image_families", 2, "{}", 7, 5, True),
    ]


def test_a_lake_without_control_snapshots_builds_empty_typed_tables(estate, empty_warehouse):
    for table in AI_TABLES:
        assert rows(empty_warehouse, f"SELECT count(*) FROM main.{table}") == [(0,)]
        assert column_types(empty_warehouse, table) == column_types(estate.warehouse, table), table
    # the rest of the warehouse is unaffected
    assert rows(empty_warehouse, "SELECT count(*) FROM sites") == rows(estate.warehouse, "SELECT count(*) FROM sites")


# ----------------------------------------------------------------- Dagster: the refresh op and the asset
def resources(home: Path, url: str | None = None) -> dict:
    return {
        "control": ControlStoreResource(home=str(home), url=url, rbac_file=str(BUNDLED_RBAC_FILE)),
        "estate": EstateResource(home=str(home), sites_file=str(BUNDLED_SITES_FILE)),
    }


def test_refresh_op_logs_materializations(tmp_path, monkeypatch):
    monkeypatch.delenv("QLRF_CONTROL_URL", raising=False)
    with ControlStore.open(home=tmp_path) as store:
        store.create_task(make_plan(), allowed_verdicts(), requested_by="drift_sensor")
    context = build_op_context(resources=resources(tmp_path))
    export_control_store_op(context)
    events = {e.asset_key: e.metadata for e in context.get_events()}
    assert set(events) == {AssetKey(["lake", f"raw_{entity}"]) for entity in CONTROL_ENTITIES}
    assert events[AssetKey(["lake", "raw_ai_tasks"])]["rows"].value == 1
    assert Path(events[AssetKey(["lake", "raw_ai_tasks"])]["path"].value).exists()


def test_refresh_op_survives_an_unreadable_store_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("QLRF_CONTROL_URL", raising=False)
    (tmp_path / "control.sqlite").write_bytes(b"this is not a database" * 100)
    context = build_op_context(resources=resources(tmp_path))
    export_control_store_op(context)  # logged, not raised: discovery and the warehouse go on
    assert context.get_events() == []
    assert not (tmp_path / "lake").exists()


def test_image_decisions_reach_the_warehouse(estate):
    assert rows(estate.warehouse, "SELECT parent_image_id, child_image_id, relation, source, linked_by FROM image_lineage") == [
        ("app@1", "app@2", "patched_from", "registered", "bob")
    ]
    assert rows(estate.warehouse, "SELECT image_id, from_status, to_status, promoted_by, is_latest FROM image_promotions") == [
        ("app@2", None, "production", "alice", True)
    ]


def test_refresh_op_does_not_create_a_missing_store(tmp_path, monkeypatch):
    monkeypatch.delenv("QLRF_CONTROL_URL", raising=False)
    context = build_op_context(resources=resources(tmp_path))
    export_control_store_op(context)
    assert not (tmp_path / "control.sqlite").exists()
    assert {e.metadata["rows"].value for e in context.get_events()} == {0}
    assert len(list_snapshots(tmp_path / "lake", "ai_tasks", CONTROL_SITE_ID)) == 1


def test_control_store_export_asset(tmp_path, monkeypatch):
    monkeypatch.delenv("QLRF_CONTROL_URL", raising=False)
    with ControlStore.open(home=tmp_path) as store:
        store.create_task(make_plan(), allowed_verdicts(), requested_by="drift_sensor")
        store.record_tool_invocation(None, "drift_items", {}, 1, 2, 1)
    result = materialize([control_store_export], resources=resources(tmp_path))
    assert result.success
    counts = {
        m.asset_key.path[-1]: m.metadata["rows"].value for m in result.asset_materializations_for_node("control_store_export")
    }
    assert counts == {
        "raw_ai_tasks": 1, "raw_ai_task_plans": 1, "raw_ai_tool_invocations": 1,
        "raw_image_lineage_links": 0, "raw_image_promotions": 0, "raw_compliance_waivers": 0,
    }
    spec = control_store_export.specs_by_key[AssetKey(["lake", "raw_ai_tasks"])]
    assert spec.group_name == "remediation" and spec.owners == ["team:platform"] and spec.kinds == {"python", "parquet"}
    assert not control_store_export.partitions_def


def test_refresh_job_exports_before_the_warehouse_builds():
    from qlrf_pipelines.jobs.refresh import refresh_estate_job

    inputs = {node.name: deps for node, deps in refresh_estate_job.graph.dependencies.items()}
    assert inputs["build_warehouse"]["control_export"].node == "export_control_store"
    assert inputs["export_control_store"] == {}, "the export waits for nothing, and nothing but the build waits for it"
