"""Every column users can query in the warehouse contract is documented in dbt."""

import json

import pytest

from tests.conftest import sql

pytestmark = pytest.mark.integration
CONTRACT = [
    "sites", "assets", "asset_tags", "golden_image_families", "golden_images", "images",
    "image_artifacts", "image_deployments", "drift_reports", "drift_items", "drift_trends", "image_tags",
    "v_image_deployment_summary", "image_vulnerabilities", "image_components", "image_builds",
    "v_image_vuln_summary", "ai_tasks", "ai_task_plans", "ai_tool_invocations",
    "compliance_frameworks", "compliance_controls", "compliance_checks", "control_evidence",
    "control_evidence_failures", "v_compliance_status", "dr_pairs",
]


def test_every_contract_column_is_documented(sample_runs, prepared_manifest):
    manifest = json.loads(prepared_manifest.manifest_path.read_text())
    models = {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    undocumented = []
    for table in CONTRACT:
        model = models[table]
        assert model["description"].strip(), f"{table} has no description"
        documented = {name: column.get("description", "").strip() for name, column in model["columns"].items()}
        actual = [row[0] for row in sql(
            sample_runs.home,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [table],
        )]
        assert actual, f"{table} missing from the warehouse"
        undocumented += [f"{table}.{column}" for column in actual if not documented.get(column)]
    assert undocumented == []
