"""The code location loads and validates with no environment variables, and shows what the UI needs."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from qlrf_pipelines.definitions import build_definitions

pytestmark = pytest.mark.integration


def test_code_location_validates_with_empty_environment(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(Path(__file__).parents[2] / "workspace.yaml")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr
    assert not (tmp_path / ".qlrf").exists(), "loading must not write state"


def test_asset_graph_for_the_ui(prepared_manifest, monkeypatch):
    for name in ("QLRF_HOME", "QLRF_SITES", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    groups = {node.key.to_user_string(): node.group_name for node in graph.asset_nodes}
    assert groups["lake/raw_assets"] == "discovery"
    assert groups["drift_items"] == "drift" and groups["golden_images"] == "images" and groups["sites"] == "inventory"
    raw_assets = graph.get(dg.AssetKey(["lake", "raw_assets"]))
    assert raw_assets.partitions_def.get_partition_keys() == [
        "aws-prod-use1", "aws-stg-euw1", "azure-prod-weu", "gcp-prod-euw1", "vsphere-dc1", "k8s-prod-eks", "k8s-stg-gke",
    ]
    drift = graph.get(dg.AssetKey(["drift_items"]))
    assert drift.description and drift.owners == ["team:platform"] and "dbt" in drift.kinds
    check_names = {check.name for check in graph.get_check_keys_for_assets([drift.key])}
    assert any(name.startswith("unique") for name in check_names), check_names
    assert defs.resolve_schedule_def("refresh_estate_schedule").job_name == "refresh_estate_job"
    for job in ("refresh_estate_job", "discover_sites_job", "build_warehouse_job", "plan_remediation_job", "execute_remediation_job"):
        assert defs.resolve_job_def(job)
    assert defs.resolve_sensor_def("drift_sensor").job_name == "plan_remediation_job"
    assert defs.resolve_sensor_def("approval_sensor").job_name == "execute_remediation_job"
