"""Each planner tool on the sample estate returns the values direct SQL finds; `qlrf tools` as a process.

Expected values come from direct SQL against the same warehouse, or are known facts of the sample
(ubuntu-22.04-base is current at 1.3.0, its lineage is 1.0.0 > 1.1.0 > 1.2.0 > 1.3.0 > 1.4.0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qlrf_pipelines.planning.tools import ToolContext, ToolError, call_tool
from qlrf_pipelines.settings import Paths
from tests.conftest import sql

QLRF = str(Path(sys.executable).parent / "qlrf")


@pytest.fixture(scope="module")
def ctx(sample_runs) -> ToolContext:
    paths = Paths(sample_runs.home)
    return ToolContext(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir)


def test_query_assets_filters(ctx, sample_runs):
    expected = sql(
        sample_runs.home,
        "SELECT asset_id FROM assets WHERE site_id = ? AND image_family = ? ORDER BY site_id, name, asset_id",
        ["aws-prod-use1", "ubuntu-22.04-base"],
    )
    result = call_tool(ctx, "query_assets", {"site_id": "aws-prod-use1", "image_family": "ubuntu-22.04-base"})
    assert expected and [r["asset_id"] for r in result.rows] == [e[0] for e in expected]
    assert result.result_size == len(expected)
    assert set(result.rows[0]) == {
        "asset_id", "site_id", "name", "kind", "state", "environment", "image_id", "image_family",
        "image_version", "instance_type", "region",
    }
    assert all(r["site_id"] == "aws-prod-use1" and r["image_family"] == "ubuntu-22.04-base" for r in result.rows)
    # the sample has anchor assets named anchor-*: behind and current
    anchors = call_tool(ctx, "query_assets", {"site_id": "aws-prod-use1", "name_glob": "anchor-*"}).rows
    expected_anchors = sql(sample_runs.home, "SELECT count(*) FROM assets WHERE site_id = 'aws-prod-use1' AND name LIKE 'anchor-%'")
    assert anchors and len(anchors) == expected_anchors[0][0]
    assert all(r["name"].startswith("anchor-") for r in anchors)


def test_query_assets_input_is_not_sql(ctx):
    # a quote in a filter is a value, not SQL
    assert call_tool(ctx, "query_assets", {"site_id": "x' OR '1'='1"}).rows == []


def test_query_assets_truncates_the_whole_estate(ctx, sample_runs):
    total = sql(sample_runs.home, "SELECT count(*) FROM assets")[0][0]
    assert total > 200
    result = call_tool(ctx, "query_assets", {})
    assert result.truncated and len(result.rows) == 200 and result.result_size == total
    assert f"200 of {total}" in result.note


def test_get_golden_image(ctx, sample_runs):
    row = call_tool(ctx, "get_golden_image", {"family": "ubuntu-22.04-base"}).rows
    assert row["current_version"] == "1.3.0"
    assert row["current_image_id"] == "ubuntu-22.04-base@1.3.0"
    status, created_at = sql(
        sample_runs.home, "SELECT status, created_at FROM golden_images WHERE image_id = 'ubuntu-22.04-base@1.3.0'"
    )[0]
    assert row["status"] == status == "production"
    assert row["created_at"] == created_at.isoformat()
    assert [v["version"] for v in row["versions"]] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    assert [v["image_id"] for v in row["versions"] if v["is_current"]] == ["ubuntu-22.04-base@1.3.0"]


def test_get_golden_image_unknown_family_lists_known_ones(ctx):
    with pytest.raises(ToolError, match=r"unknown image family 'debian-12'.*ubuntu-22.04-base"):
        call_tool(ctx, "get_golden_image", {"family": "debian-12"})


def test_image_lineage(ctx, sample_runs):
    row = call_tool(ctx, "image_lineage", {"image_id": "ubuntu-22.04-base@1.1.0"}).rows
    assert row["known"] is True
    assert row["ancestors"] == ["ubuntu-22.04-base@1.0.0"]
    assert [(d["image_id"], d["distance"]) for d in row["descendants"]] == [
        ("ubuntu-22.04-base@1.2.0", 1), ("ubuntu-22.04-base@1.3.0", 2), ("ubuntu-22.04-base@1.4.0", 3),
    ]
    relations = dict(sql(
        sample_runs.home,
        "SELECT image_id, relation FROM v_image_lineage_tree WHERE image_id IN "
        "('ubuntu-22.04-base@1.2.0', 'ubuntu-22.04-base@1.3.0', 'ubuntu-22.04-base@1.4.0')",
    ))
    assert {d["image_id"]: d["relation"] for d in row["descendants"]} == relations
    root = call_tool(ctx, "image_lineage", {"image_id": "ubuntu-22.04-base@1.0.0"}).rows
    assert root["ancestors"] == [] and len(root["descendants"]) == 4
    unknown = call_tool(ctx, "image_lineage", {"image_id": "nope@0"}).rows
    assert unknown == {"image_id": "nope@0", "known": False, "status": None, "ancestors": [], "descendants": []}


def test_image_vulnerabilities_match_the_table(ctx, sample_runs):
    # The session's sample runs import no scans, so the findings table is empty: the tool agrees.
    expected = sql(
        sample_runs.home, "SELECT count(*) FROM image_vulnerabilities WHERE image_id = 'ubuntu-22.04-base@1.1.0'"
    )[0][0]
    result = call_tool(ctx, "image_vulnerabilities", {"image_id": "ubuntu-22.04-base@1.1.0"})
    assert result.result_size == expected == len(result.rows)
    high = call_tool(ctx, "image_vulnerabilities", {"image_id": "ubuntu-22.04-base@1.1.0", "min_severity": "high"})
    assert all(r["severity"].lower() in ("critical", "high") for r in high.rows)


def test_cve_blast_radius_shape_without_imported_scans(ctx, sample_runs):
    # Without `qlrf import --sample` (not run: it would change the shared session warehouse) the CVE
    # reaches nothing; the summary has the empty shape.
    expected = sql(sample_runs.home, "SELECT count(*) FROM cve_blast_radius(?)", ["CVE-2024-6387"])[0][0]
    row = call_tool(ctx, "cve_blast_radius", {"cve_id": "CVE-2024-6387"}).rows
    assert expected == 0
    assert row == {
        "cve_id": "CVE-2024-6387", "image_count": 0, "asset_count": 0, "production_assets": 0,
        "images": [], "by_site": [],
    }


def test_drift_items_filters(ctx, sample_runs):
    home = sample_runs.home
    config = call_tool(ctx, "drift_items", {"site_id": "aws-prod-use1", "drift_type": "config"}).rows
    expected = sql(
        home, "SELECT drift_id FROM drift_items WHERE status = 'open' AND site_id = 'aws-prod-use1' "
              "AND drift_type = 'config' ORDER BY drift_id",
    )
    assert expected and sorted(r["drift_id"] for r in config) == [e[0] for e in expected]
    assert all(r["drift_type"] == "config" and r["rule_id"] for r in config)

    image = call_tool(ctx, "drift_items", {"drift_type": "image", "severity": "critical"}).rows
    expected_image = sql(
        home, "SELECT count(*) FROM drift_items WHERE status = 'open' AND drift_type LIKE 'image\\_%' ESCAPE '\\' "
              "AND severity = 'critical'",
    )[0][0]
    assert expected_image and len(image) == expected_image
    assert all(r["drift_type"].startswith("image_") and r["severity"] == "critical" for r in image)

    rule = call_tool(ctx, "drift_items", {"rule_id": "QLRF-BAK-001"}).rows
    expected_rule = sql(home, "SELECT count(*) FROM drift_items WHERE status = 'open' AND rule_id = 'QLRF-BAK-001'")
    assert rule and len(rule) == expected_rule[0][0]


def test_compliance_status(ctx, sample_runs):
    rows = call_tool(ctx, "compliance_status", {"framework": "nist-800-53", "control": "CM-2"}).rows
    expected = sql(
        sample_runs.home,
        "SELECT check_id, control_status, check_status, failing_count FROM v_compliance_status "
        "WHERE framework_id = 'nist-800-53' AND control_id = 'CM-2' ORDER BY check_id",
    )
    assert expected
    assert [(r["check_id"], r["control_status"], r["check_status"], r["failing_count"]) for r in rows] == [
        tuple(e) for e in expected
    ]
    framework = call_tool(ctx, "compliance_status", {"framework": "soc2"}).rows
    assert len(framework) == sql(
        sample_runs.home, "SELECT count(*) FROM v_compliance_status WHERE framework_id = 'soc2'"
    )[0][0]
    assert {r["framework_id"] for r in framework} == {"soc2"}


def test_control_evidence_is_the_latest(ctx, sample_runs):
    rows = call_tool(ctx, "control_evidence", {"framework": "nist-800-53", "control": "CM-2"}).rows
    expected = sql(
        sample_runs.home,
        "SELECT evidence_id, sha256, status FROM control_evidence WHERE framework_id = 'nist-800-53' "
        "AND control_id = 'CM-2' ORDER BY evaluated_at DESC, check_id",
    )
    assert len(expected) >= 2  # two refreshes: two evaluations
    latest = sql(
        sample_runs.home,
        "SELECT evidence_id, sha256 FROM v_compliance_status WHERE framework_id = 'nist-800-53' AND control_id = 'CM-2' "
        "ORDER BY check_id",
    )
    assert [(r["evidence_id"], r["sha256"]) for r in rows] == [tuple(e) for e in latest]
    assert all(len(r["sha256"]) == 64 and r["status"] for r in rows)


def test_list_sites(ctx, sample_runs):
    rows = call_tool(ctx, "list_sites", {}).rows
    expected = sql(sample_runs.home, "SELECT site_id, last_snapshot_id, asset_count FROM sites ORDER BY site_id")
    assert [(r["site_id"], r["last_snapshot_id"], r["asset_count"]) for r in rows] == [tuple(e) for e in expected]
    assert len(rows) == 7 and all(r["snapshot_count"] == 2 for r in rows)
    staging = call_tool(ctx, "list_sites", {"environment": "staging"}).rows
    assert {r["site_id"] for r in staging} == {"aws-stg-euw1", "k8s-stg-gke"}


def _qlrf(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QLRF_HOME": str(home)}
    return subprocess.run([QLRF, *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_lists_tools_and_agents(sample_runs):
    table = _qlrf(sample_runs.home, "tools")
    assert table.returncode == 0, table.stderr
    assert "get_golden_image" in table.stdout and "read" in table.stdout
    listed = json.loads(_qlrf(sample_runs.home, "tools", "--format", "json").stdout)
    by_name = {t["name"]: t for t in listed}
    assert len(by_name) >= 9
    assert by_name["get_golden_image"]["input_schema"]["required"] == ["family"]
    assert len(by_name) >= 26 and all(t["input_schema"]["type"] == "object" for t in listed)
    assert {t["name"] for t in listed if t["effect"] != "read"} == {"generate_patch_plan", "generate_rollback_plan", "generate_sop"}
    assert {t["effect"] for t in listed} == {"read", "propose"}
    agents = _qlrf(sample_runs.home, "agents", "--format", "json")
    assert agents.returncode == 0, agents.stderr
    assert {a["agent"] for a in json.loads(agents.stdout)} == {
        "drift", "patch", "compliance", "incident", "dr", "cost", "security", "image",
    }
    assert "compliance_status" in _qlrf(sample_runs.home, "agents").stdout


def test_cli_calls_a_tool(sample_runs):
    before = (Paths(sample_runs.home).warehouse_path).stat().st_mtime_ns
    done = _qlrf(sample_runs.home, "tools", "call", "get_golden_image", "--args", '{"family": "ubuntu-22.04-base"}')
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["tool"] == "get_golden_image" and out["truncated"] is False
    assert out["rows"]["current_version"] == "1.3.0"
    assert Paths(sample_runs.home).warehouse_path.stat().st_mtime_ns == before  # read-only

    bad = _qlrf(sample_runs.home, "tools", "call", "get_golden_image", "--args", "{}")
    assert bad.returncode != 0 and "invalid arguments for tool 'get_golden_image'" in bad.stderr
    unknown = _qlrf(sample_runs.home, "tools", "call", "nope")
    assert unknown.returncode != 0 and "unknown tool 'nope'" in unknown.stderr and "list_sites" in unknown.stderr
