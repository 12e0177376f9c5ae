"""The dbt project end to end on a tiny hand-made lake: `dbt build` (models, data tests, unit
tests) into a temporary DuckDB file, then SQL on the warehouse contract.

dbt runs twice per module: once on the lake of dbt_lake_fixture, and once more after a second
snapshot of one site, to show that drift_reports accumulates and never rewrites earlier rows.
Tests of the first build read a copy of the warehouse taken right after it, so they do not depend
on the order tests run in.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.integration.dbt_lake_fixture import (
    AWS_PROD,
    AWS_STG,
    EXPECTED_DRIFT,
    K8S_PROD,
    NO_DRIFT,
    S0,
    S1,
    S2,
    build_tiny_lake,
    write_second_staging_snapshot,
)

pytestmark = pytest.mark.integration

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"

CONTRACT_TABLES = {
    "sites", "assets", "asset_tags", "image_artifacts", "golden_images", "images",
    "golden_image_families", "image_deployments", "drift_items", "drift_reports", "drift_trends",
}


@dataclass
class Warehouse:
    tmp: Path
    lake_dir: Path
    live_path: Path  # the warehouse dbt writes
    first_build: Path  # a copy taken right after the first build
    node_current_ami: str


def run_dbt_build(tmp: Path, lake_dir: Path, warehouse: Path) -> object:
    """`dbt build` in-process with this repository's project and profile over `lake_dir` into
    `warehouse`; no network."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("QLRF_LAKE_DIR", str(lake_dir))
        env.setenv("QLRF_WAREHOUSE_PATH", str(warehouse))
        env.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        env.setenv("DO_NOT_TRACK", "1")
        return _invoke_dbt_build(tmp)


def _invoke_dbt_build(tmp: Path) -> object:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "build",
            "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(tmp / "dbt-target"),
            "--log-path", str(tmp / "dbt-logs"),
        ]
    )
    release_warehouse()
    if result.exception is not None:
        raise result.exception
    failures = [
        f"{r.node.unique_id}: {r.status} {r.message}"
        for r in (result.result or [])
        if str(r.status) not in {"success", "pass", "warn"}  # warn: a data-quality finding, not a failure
    ]
    assert result.success and not failures, "dbt build failed:\n" + "\n".join(failures)
    return result


def release_warehouse() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open in this process after an invocation, so the
    file is checkpointed and other connections (read-only, or a file copy) see every table.
    Only in-process callers need this: dagster-dbt runs dbt in a subprocess."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def rows(path: Path, statement: str, parameters=None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(statement, parameters or []).fetchall()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("qlrf-dbt")
    lake = build_tiny_lake(tmp / "lake")
    live = tmp / "warehouse.duckdb"
    result = run_dbt_build(tmp, lake.lake_dir, live)
    unit_tests = [r for r in result.result if r.node.resource_type == "unit_test"]
    assert len(unit_tests) >= 4, "the drift and catalog unit tests ran"
    first = tmp / "first-build.duckdb"
    shutil.copyfile(live, first)
    return Warehouse(tmp, lake.lake_dir, live, first, lake.node_current_ami)


def test_contract_tables_land_in_main_and_staging_in_staging(warehouse):
    tables = dict(
        ((schema, name), kind)
        for schema, name, kind in rows(
            warehouse.first_build,
            "SELECT table_schema, table_name, table_type FROM information_schema.tables",
        )
    )
    main = {name for schema, name in tables if schema == "main"}
    assert CONTRACT_TABLES <= main
    assert tables[("main", "images")] == "VIEW"
    assert all(not name.startswith(("stg_", "int_")) for name in main)
    staging = {name for schema, name in tables if schema == "staging"}
    assert {"stg_sites", "stg_assets", "stg_images", "int_golden_versions", "int_asset_images",
            "int_drift_assessments", "int_config_drift", "drift_observations", "stg_drift_rules"} <= staging


def test_sites_describe_latest_snapshot_and_history(warehouse):
    sites = {
        site_id: rest
        for site_id, *rest in rows(
            warehouse.first_build,
            "SELECT site_id, provider, environment, last_snapshot_id, snapshot_count, asset_count, image_count FROM sites",
        )
    }
    assert sites == {
        AWS_PROD: ["aws", "production", S1, 2, 9, 12],
        AWS_STG: ["aws", "staging", S1, 1, 3, 5],
        K8S_PROD: ["kubernetes", "production", S1, 1, 8, 5],
    }
    # assets: latest snapshot only; history stays in staging and image_deployments
    counts = dict(rows(warehouse.first_build, "SELECT site_id, count(*) FROM assets GROUP BY site_id"))
    assert counts == {AWS_PROD: 9, AWS_STG: 3, K8S_PROD: 8}
    history = rows(
        warehouse.first_build,
        "SELECT snapshot_id, count(*), bool_and(is_latest) FROM staging.stg_assets WHERE site_id = ? "
        "GROUP BY snapshot_id ORDER BY snapshot_id",
        [AWS_PROD],
    )
    assert history == [(S0, 3, False), (S1, 9, True)]
    tags = rows(
        warehouse.first_build,
        "SELECT key, value FROM asset_tags JOIN assets USING (asset_id, site_id) "
        "WHERE assets.name = 'vm-current' ORDER BY key",
    )
    assert tags == [("Name", "vm-current"), ("team", "platform")]


def test_expected_drift_items(warehouse):
    found = {
        (site_id, name): (drift_type, severity, versions_behind, days_behind)
        for site_id, name, drift_type, severity, versions_behind, days_behind in rows(
            warehouse.first_build,
            "SELECT site_id, asset_name, drift_type, severity, versions_behind, days_behind FROM drift_items "
            "WHERE status = 'open'",
        )
    }
    assert found == EXPECTED_DRIFT
    assert not NO_DRIFT & set(found)
    # open drift items are the latest snapshot's; no rules landed here, so no config drift
    assert {s for (s,) in rows(warehouse.first_build, "SELECT DISTINCT snapshot_id FROM drift_items WHERE status = 'open'")} == {S1}
    assert rows(warehouse.first_build, "SELECT count(*) FROM drift_items WHERE drift_type = 'config'") == [(0,)]
    # history: the VM retired between S0 and S1 keeps its drift, closed by S1
    closed = rows(
        warehouse.first_build,
        "SELECT site_id, asset_name, drift_type, first_seen_snapshot_id, snapshot_id, closed_snapshot_id, resolution "
        "FROM drift_items WHERE status = 'closed'",
    )
    assert closed == [(AWS_PROD, "vm-retired", "image_deprecated", S0, S0, S1, "asset_removed")]


def test_drift_item_columns(warehouse):
    (row,) = rows(
        warehouse.first_build,
        "SELECT drift_id = md5(asset_id || '|' || drift_key || '|' || first_seen_snapshot_id), provider, environment, kind, "
        "image_id, family, asset_version, image_status, current_version, current_image_id, detail "
        "FROM drift_items WHERE site_id = ? AND asset_name = 'vm-deprecated-3' AND status = 'open'",
        [AWS_PROD],
    )
    assert row == (
        True, "aws", "production", "vm", "ubuntu-22.04-base@1.0.0", "ubuntu-22.04-base", "1.0.0", "deprecated",
        "1.3.0", "ubuntu-22.04-base@1.3.0",
        "runs ubuntu-22.04-base 1.0.0 (deprecated); current production is 1.3.0, 3 versions / 189 days behind",
    )
    (container,) = rows(
        warehouse.first_build,
        "SELECT image_status, current_version, detail FROM drift_items WHERE asset_name = 'web/python-behind-1' "
        "AND status = 'open'",
    )
    assert container[:2] == (None, "3.12.8-r2")
    assert "newest seen" in container[2]


def test_kubernetes_node_runs_an_ami_discovered_by_an_aws_site(warehouse):
    (node,) = rows(
        warehouse.first_build,
        "SELECT image_ref, image_id, image_family, image_version, image_status FROM assets "
        "WHERE site_id = ? AND name = 'node-current'",
        [K8S_PROD],
    )
    assert node == (warehouse.node_current_ami, "ubuntu-22.04-base@1.3.0", "ubuntu-22.04-base", "1.3.0", "production")
    discovered_by = rows(
        warehouse.first_build,
        "SELECT site_id, provider FROM image_artifacts WHERE provider_image_id = ?",
        [warehouse.node_current_ami],
    )
    assert discovered_by == [(AWS_PROD, "aws")]
    deployments = rows(
        warehouse.first_build,
        "SELECT snapshot_id, image_id FROM image_deployments WHERE site_id = ? AND asset_name = 'node-current'",
        [K8S_PROD],
    )
    assert deployments == [(S1, "ubuntu-22.04-base@1.3.0")]


def test_golden_image_catalog(warehouse):
    families = {
        family: rest
        for family, *rest in rows(
            warehouse.first_build,
            "SELECT family, current_version, current_image_id, current_basis, latest_version, version_count, providers "
            "FROM golden_image_families",
        )
    }
    assert families["ubuntu-22.04-base"] == ["1.3.0", "ubuntu-22.04-base@1.3.0", "production", "1.4.0", 5, "aws"]
    assert families["rhel-9-base"][:3] == ["9.4.0", "rhel-9-base@9.4.0", "production"]
    assert families["windows-2022-base"][0] == "2026.10"
    assert families["python-3.12"] == ["3.12.8-r2", "python-3.12@3.12.8-r2", "newest_seen", "3.12.8-r2", 3, "kubernetes"]
    assert families["nginx-1.27"][2] == "newest_seen"
    ubuntu = rows(
        warehouse.first_build,
        "SELECT version, status, is_current, artifact_count, site_count, assets_running FROM golden_images "
        "WHERE family = 'ubuntu-22.04-base' ORDER BY version_key",
    )
    # AMIs in us-east-1 (aws-prod) and eu-west-1 (aws-stg); running counts exclude the terminated VM
    assert ubuntu == [
        ("1.0.0", "deprecated", False, 2, 2, 1),
        ("1.1.0", "deprecated", False, 2, 2, 0),
        ("1.2.0", "production", False, 2, 2, 3),
        ("1.3.0", "production", True, 2, 2, 2),
        ("1.4.0", "testing", False, 2, 2, 2),
    ]
    (on_current,) = rows(
        warehouse.first_build,
        "SELECT assets_running, assets_on_current FROM golden_image_families WHERE family = 'ubuntu-22.04-base'",
    )
    assert on_current == (8, 2)
    assert rows(warehouse.first_build, "SELECT count(*) FROM images") == rows(
        warehouse.first_build, "SELECT count(*) FROM golden_images"
    )
    not_golden = rows(
        warehouse.first_build,
        "SELECT image_id, family FROM image_artifacts WHERE provider_image_id = 'ami-0thirdparty0000001'",
    )
    assert not_golden == [(None, None)]


def test_image_deployments_cover_history(warehouse):
    history = rows(
        warehouse.first_build,
        "SELECT snapshot_id, asset_name, image_id, is_latest FROM image_deployments "
        "WHERE site_id = ? AND asset_name IN ('vm-deprecated-3', 'vm-retired') ORDER BY snapshot_id, asset_name",
        [AWS_PROD],
    )
    assert history == [
        (S0, "vm-deprecated-3", "ubuntu-22.04-base@1.0.0", False),
        (S0, "vm-retired", "ubuntu-22.04-base@1.1.0", False),
        (S1, "vm-deprecated-3", "ubuntu-22.04-base@1.0.0", True),
    ]
    unknown = rows(
        warehouse.first_build,
        "SELECT image_ref, image_id FROM image_deployments WHERE asset_name = 'web/redis'",
    )
    assert unknown == [("docker.io/library/redis:7.4", None)]


def test_drift_reports_one_row_per_site_snapshot(warehouse):
    reports = rows(
        warehouse.first_build,
        "SELECT site_id, snapshot_id, environment, assets_total, assets_drifted, drift_items, critical, high, medium, low, "
        "image_unknown, image_outdated, image_deprecated, image_revoked, image_testing_in_production, round(drift_rate, 4), "
        "config_drift, opened, closed FROM drift_reports ORDER BY site_id, snapshot_id",
    )
    # S1 of aws-prod: vm-deprecated-3 and vm-outdated-1 drift on from S0, vm-retired is gone
    assert reports == [
        (AWS_PROD, S0, "production", 3, 3, 3, 1, 1, 1, 0, 0, 1, 2, 0, 0, 1.0, 0, 3, 0),
        (AWS_PROD, S1, "production", 8, 7, 7, 2, 3, 2, 0, 2, 1, 2, 1, 1, 0.875, 0, 5, 1),
        (AWS_STG, S1, "staging", 3, 2, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0.6667, 0, 2, 0),
        (K8S_PROD, S1, "production", 7, 4, 4, 0, 2, 2, 0, 1, 3, 0, 0, 0, 0.5714, 0, 4, 0),
    ]


def test_second_snapshot_adds_reports_and_keeps_earlier_rows(warehouse):
    before = rows(warehouse.first_build, "SELECT * FROM drift_reports ORDER BY site_id, snapshot_id")
    write_second_staging_snapshot(warehouse.lake_dir)
    run_dbt_build(warehouse.tmp, warehouse.lake_dir, warehouse.live_path)

    after = rows(warehouse.live_path, "SELECT * FROM drift_reports ORDER BY site_id, snapshot_id")
    assert len(after) == len(before) + 1
    assert [row for row in after if row in before] == before, "earlier report rows are never rewritten"
    (new,) = rows(
        warehouse.live_path,
        "SELECT assets_total, assets_drifted, drift_rate, opened, closed, "
        "reported_at > (SELECT max(reported_at) FROM drift_reports WHERE snapshot_id <> ?) FROM drift_reports "
        "WHERE site_id = ? AND snapshot_id = ?",
        [S2, AWS_STG, S2],
    )
    assert new == (2, 0, 0.0, 0, 2, True)
    # the current views moved to the new snapshot; history grew: both staging items closed by S2
    assert rows(warehouse.live_path, "SELECT count(*) FROM drift_items WHERE site_id = ? AND status = 'open'", [AWS_STG]) == [(0,)]
    assert rows(
        warehouse.live_path,
        "SELECT asset_name, resolution, closed_snapshot_id FROM drift_items WHERE site_id = ? ORDER BY asset_name",
        [AWS_STG],
    ) == [("vm-outdated-1", "fixed", S2), ("vm-undiscovered", "asset_removed", S2)]
    assert rows(
        warehouse.live_path, "SELECT last_snapshot_id, snapshot_count, asset_count FROM sites WHERE site_id = ?", [AWS_STG]
    ) == [(S2, 2, 2)]
    assert rows(
        warehouse.live_path,
        "SELECT count(DISTINCT snapshot_id) FROM image_deployments WHERE site_id = ?",
        [AWS_STG],
    ) == [(2,)]
