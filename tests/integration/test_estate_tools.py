"""The estate planner tools (qlrf_pipelines.planning.tools.estate_tools) return what direct SQL finds.

Two estates:
- `sample_runs` (conftest): the bundled estate refreshed twice; it has no imported SBOM, scan or
  provenance and no waiver, so the supply-chain tools are checked there for agreeing with the
  (empty or not) tables.
- `imported` (this module): a copy of that lake with the bundled supply-chain files imported
  (Trivy scan of ubuntu-22.04-base 1.1.0, Grype scan of rhel-9-base 9.4.0, CycloneDX SBOM of
  ubuntu 1.2.0, SPDX SBOM and SLSA provenance of ubuntu 1.3.0, SLSA of windows-2022-base
  2026.10), a control store export with two tasks and three waivers (one in force, one revoked,
  one expired), rebuilt with dbt and evaluated with the waiver in force.
Known facts: ubuntu-22.04-base is current at 1.3.0 (latest 1.4.0, testing); between its SBOMs of
1.2.0 and 1.3.0 only openssh-client and openssh-server change (8.9p1-3ubuntu0.6 -> 0.10), the
version that fixes CVE-2024-6387, which the 1.1.0 scan reports on openssh-server.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.pricing import BUNDLED_PRICES_FILE, PRICES_ENV
from qlrf_pipelines.planning.queries import SITE_FLEET_SQL
from qlrf_pipelines.planning.tools import REGISTRY, ToolContext, ToolError, call_tool
from qlrf_pipelines.settings import PACKAGE_DIR, Paths
from tests.conftest import sql

pytestmark = pytest.mark.integration

ESTATE_TOOLS = (
    "asset_details", "list_image_families", "image_deployments", "image_components", "find_package", "image_builds",
    "compare_image_versions", "vulnerability_summary", "drift_trends", "compliance_failures", "waivers_in_force",
    "list_tasks", "policy_limits", "cost_estimate",
)
SUPPLY_CHAIN = PACKAGE_DIR / "sample_data" / "supply_chain"
UBUNTU = "ubuntu-22.04-base"


@pytest.fixture(scope="module")
def ctx(sample_runs) -> ToolContext:
    paths = Paths(sample_runs.home)
    return ToolContext(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir)


def one(home: Path, statement: str, parameters=None):
    rows = sql(home, statement, parameters)
    assert len(rows) == 1, rows
    return rows[0][0]


def column(home: Path, statement: str, parameters=None) -> list:
    return [r[0] for r in sql(home, statement, parameters)]


# -- the imported estate ------------------------------------------------------------------------


@dataclass
class Imported:
    home: Path
    ctx: ToolContext
    waived_asset: str
    now: datetime


def task(task_id: str, status: str, at: datetime) -> dict:
    return {
        "task_id": task_id, "title": f"move assets ({task_id})", "status": status, "requested_by": "alice",
        "site_id": "aws-prod-use1", "environment": "production", "family": UBUNTU, "risk": "high",
        "plan_version": 1, "plan_hash": "0" * 64, "plan_valid": status != "policy_denied",
        "created_at": at.isoformat(), "updated_at": at.isoformat(),
    }


def waiver(waiver_id: str, asset_id: str, created: datetime, expires: date, revoked: datetime | None = None) -> dict:
    return {
        "waiver_id": waiver_id, "control_id": "CC7.2", "framework_id": "soc2", "asset_id": asset_id,
        "reason": "tools upgrade scheduled with the vendor", "created_by": "carol", "created_at": created.isoformat(),
        "expires_on": expires.isoformat(), "revoked_at": revoked.isoformat() if revoked else None,
        "revoked_by": "dave" if revoked else None, "revoke_reason": "fixed" if revoked else None,
    }


@pytest.fixture(scope="module")
def imported(sample_runs, tmp_path_factory) -> Imported:
    from qlrf_pipelines.compliance.catalog import load_catalog
    from qlrf_pipelines.compliance.evaluate import evaluate_and_record
    from qlrf_pipelines.control_export import write_control_snapshot
    from qlrf_pipelines.supply_chain.landing import land_file
    from tests.integration.test_dbt_models import run_dbt_build

    tmp = tmp_path_factory.mktemp("estate-tools")
    home = tmp / "home"
    shutil.copytree(sample_runs.home / "lake", home / "lake")
    now = datetime.now(timezone.utc)
    for i, path in enumerate(sorted(SUPPLY_CHAIN.glob("*.json"))):
        land_file(home / "lake", path, now=now - timedelta(days=2, minutes=i))
    ldap = one(sample_runs.home, "SELECT asset_id FROM assets WHERE site_id = 'vsphere-dc1' AND name = 'app-ldap-024'")
    reports = one(sample_runs.home, "SELECT asset_id FROM assets WHERE site_id = 'vsphere-dc1' AND name = 'db-reports-033'")
    waivers = [
        waiver("W-000001", ldap, now - timedelta(days=1), (now + timedelta(days=30)).date()),
        waiver("W-000002", reports, now - timedelta(days=3), (now + timedelta(days=30)).date(), revoked=now - timedelta(days=1)),
        waiver("W-000003", reports, now - timedelta(days=40), (now - timedelta(days=10)).date()),
    ]
    write_control_snapshot(home / "lake", {
        "ai_tasks": [task("T-900001", "pending_approval", now - timedelta(hours=2)),
                     task("T-900002", "policy_denied", now - timedelta(hours=1))],
        "compliance_waivers": waivers,
    }, now=now - timedelta(minutes=30))
    run_dbt_build(tmp, home / "lake", home / "warehouse.duckdb")
    evaluate_and_record(home / "warehouse.duckdb", home / "lake", "estate-tools", waivers=waivers[:1],
                        catalog=load_catalog(environ={}), now=now)
    return Imported(home, ToolContext(warehouse_path=home / "warehouse.duckdb", lake_dir=home / "lake"), ldap, now)


# -- the registry -------------------------------------------------------------------------------


def test_every_estate_tool_is_registered_read_only_with_described_arguments():
    for name in ESTATE_TOOLS:
        tool = REGISTRY[name]
        assert tool.effect == "read" and tool.agents and len(tool.description) > 60, name
        for field, spec in tool.input_schema().get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"
    assert "cost" in REGISTRY["cost_estimate"].agents
    assert "compliance" in REGISTRY["compliance_failures"].agents


def test_arguments_are_validated(ctx):
    with pytest.raises(ToolError, match="invalid arguments for tool 'drift_trends'"):
        call_tool(ctx, "drift_trends", {"days": 0})
    with pytest.raises(ToolError, match="invalid arguments for tool 'list_tasks'"):
        call_tool(ctx, "list_tasks", {"status": "done"})
    with pytest.raises(ToolError, match="invalid arguments for tool 'asset_details'"):
        call_tool(ctx, "asset_details", {"asset_id": "x", "extra": 1})


# -- assets and images --------------------------------------------------------------------------


def test_asset_details(ctx, sample_runs):
    home = sample_runs.home
    asset_id = one(home, "SELECT asset_id FROM assets WHERE site_id = 'azure-prod-weu' AND name = 'anchor-behind-01'")
    details = call_tool(ctx, "asset_details", {"asset_id": asset_id}).rows
    assert (details["site_id"], details["name"], details["kind"], details["state"]) == (
        "azure-prod-weu", "anchor-behind-01", "vm", "running")
    assert details["instance_type"] == one(home, "SELECT instance_type FROM assets WHERE asset_id = ?", [asset_id])
    assert details["disk_encryption"] == one(home, "SELECT disk_encryption FROM assets WHERE asset_id = ?", [asset_id])
    assert details["tags"] == dict(sql(home, "SELECT key, value FROM asset_tags WHERE asset_id = ?", [asset_id]))
    assert details["tags"]["app"] == "qlrf-anchor"
    image = details["image"]
    assert (image["image_id"], image["status"], image["is_current"]) == (f"{UBUNTU}@1.0.0", "deprecated", False)
    assert (image["current_version"], image["latest_version"]) == ("1.3.0", "1.4.0")
    assert sorted(d["drift_id"] for d in details["open_drift"]) == column(
        home, "SELECT drift_id FROM drift_items WHERE asset_id = ? AND status = 'open' ORDER BY drift_id", [asset_id])
    assert any(d["drift_type"] == "image_deprecated" for d in details["open_drift"])
    failing = {(f["framework_id"], f["control_id"], f["check_id"]) for f in details["failing_controls"]}
    assert failing == set(sql(
        home, "SELECT framework_id, control_id, check_id FROM control_evidence_failures WHERE asset_id = ? "
              "AND evidence_id IN (SELECT evidence_id FROM v_compliance_status)", [asset_id]))
    assert ("nist-800-53", "CM-2", "no_open_high_image_drift") in failing


def test_asset_details_unknown_id_hints_at_the_name(ctx, sample_runs):
    with pytest.raises(ToolError, match=r"unknown asset_id 'anchor-behind-01'.*assets with that name") as caught:
        call_tool(ctx, "asset_details", {"asset_id": "anchor-behind-01"})
    assert one(sample_runs.home, "SELECT asset_id FROM assets WHERE site_id = 'vsphere-dc1' AND name = 'anchor-behind-01'") \
        in str(caught.value)
    with pytest.raises(ToolError, match="find ids with query_assets"):
        call_tool(ctx, "asset_details", {"asset_id": "aws:nowhere:i-0"})


def test_list_image_families(ctx, sample_runs):
    rows = call_tool(ctx, "list_image_families", {}).rows
    assert [r["family"] for r in rows] == column(sample_runs.home, "SELECT family FROM golden_image_families ORDER BY family")
    ubuntu = next(r for r in rows if r["family"] == UBUNTU)
    assert (ubuntu["current_version"], ubuntu["latest_version"], ubuntu["version_count"]) == ("1.3.0", "1.4.0", 5)
    assert ubuntu["assets_not_on_current"] == ubuntu["assets_running"] - ubuntu["assets_on_current"] > 0
    kubernetes = call_tool(ctx, "list_image_families", {"provider": "kubernetes"}).rows
    assert kubernetes and all("kubernetes" in r["providers"].split(",") for r in kubernetes)
    assert UBUNTU not in {r["family"] for r in kubernetes}


def test_image_deployments_agree_with_the_deployment_summary(ctx, sample_runs):
    home = sample_runs.home
    summary = dict(sql(home, f"SELECT image_id, assets FROM v_image_deployment_summary WHERE family = '{UBUNTU}'"))
    rows = call_tool(ctx, "image_deployments", {"family": UBUNTU}).rows
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["image_id"]] = totals.get(row["image_id"], 0) + row["assets"]
    assert totals == {k: v for k, v in summary.items() if v}
    testing = call_tool(ctx, "image_deployments", {"image_id": f"{UBUNTU}@1.4.0"}).rows
    assert testing and all(r["status"] == "testing" and not r["is_current"] for r in testing)
    assert ",".join(r["site_id"] for r in testing) == one(
        home, f"SELECT site_ids FROM v_image_deployment_summary WHERE image_id = '{UBUNTU}@1.4.0'")
    assets = call_tool(ctx, "image_deployments",
                       {"image_id": f"{UBUNTU}@1.0.0", "site_id": "aws-prod-use1", "group_by": "asset"}).rows
    assert sorted(r["asset_id"] for r in assets) == column(
        home, "SELECT asset_id FROM assets WHERE image_id = ? AND site_id = 'aws-prod-use1' AND state <> 'terminated' "
              "ORDER BY asset_id", [f"{UBUNTU}@1.0.0"])


def test_image_deployments_errors(ctx):
    with pytest.raises(ToolError, match="exactly one of image_id or family"):
        call_tool(ctx, "image_deployments", {})
    with pytest.raises(ToolError, match=f"images of {UBUNTU}: {UBUNTU}@1.0.0"):
        call_tool(ctx, "image_deployments", {"image_id": f"{UBUNTU}@9.9.9"})
    with pytest.raises(ToolError, match="unknown image family family='centos-7'; known families: .*rhel-9-base"):
        call_tool(ctx, "image_deployments", {"family": "centos-7"})


# -- supply chain -------------------------------------------------------------------------------


def test_supply_chain_tools_agree_with_the_sample_tables(ctx, sample_runs):
    # the session estate imported nothing: whatever its tables hold, the tools say the same
    home = sample_runs.home
    image = f"{UBUNTU}@1.3.0"
    assert len(call_tool(ctx, "image_components", {"image_id": image}).rows) == one(
        home, "SELECT count(*) FROM image_components WHERE image_id = ?", [image])
    assert len(call_tool(ctx, "image_builds", {"image_id": image}).rows) == one(
        home, "SELECT count(*) FROM image_builds WHERE image_id = ?", [image])
    assert len(call_tool(ctx, "vulnerability_summary", {}).rows) == one(home, "SELECT count(*) FROM v_image_vuln_summary")
    assert len(call_tool(ctx, "find_package", {"name": "openssh*"}).rows) == one(
        home, "SELECT count(*) FROM (SELECT DISTINCT image_ref, name, version FROM image_components WHERE name GLOB 'openssh*' "
              "UNION SELECT DISTINCT image_ref, package_name, installed_version FROM image_vulnerabilities "
              "WHERE package_name GLOB 'openssh*')")
    compared = call_tool(ctx, "compare_image_versions", {"family": UBUNTU, "from_version": "1.2.0", "to_version": "1.3.0"}).rows
    assert (compared["direction"], compared["versions_apart"]) == ("upgrade", 1)
    if not one(home, "SELECT count(*) FROM image_components"):
        assert compared["components"]["compared"] is False and "no SBOM imported" in compared["components"]["reason"]
    with pytest.raises(ToolError, match="unknown golden image image_id='nope@1'"):
        call_tool(ctx, "image_components", {"image_id": "nope@1"})


def test_image_components_of_an_imported_sbom(imported):
    home, image = imported.home, f"{UBUNTU}@1.3.0"
    rows = call_tool(imported.ctx, "image_components", {"image_id": image}).rows
    assert len(rows) == one(home, "SELECT count(*) FROM image_components WHERE image_id = ?", [image]) == 13
    assert {r["source"] for r in rows} == {"spdx"}
    openssh = call_tool(imported.ctx, "image_components", {"image_id": image, "name_glob": "openssh*"}).rows
    assert {(r["name"], r["version"]) for r in openssh} == {
        ("openssh-client", "1:8.9p1-3ubuntu0.10"), ("openssh-server", "1:8.9p1-3ubuntu0.10")}
    # by the image reference the SBOM names, too
    ref = openssh[0]["image_ref"]
    assert len(call_tool(imported.ctx, "image_components", {"image_id": ref}).rows) == 13
    # an image without SBOM: empty, not an error
    assert call_tool(imported.ctx, "image_components", {"image_id": f"{UBUNTU}@1.0.0"}).rows == []


def test_find_package(imported):
    rows = call_tool(imported.ctx, "find_package", {"name": "openssh-server"}).rows
    found = {r["image_id"]: r for r in rows}
    assert set(found) == {f"{UBUNTU}@1.1.0", f"{UBUNTU}@1.2.0", f"{UBUNTU}@1.3.0"}
    assert found[f"{UBUNTU}@1.1.0"]["evidence"] == "scan:trivy"
    assert found[f"{UBUNTU}@1.1.0"]["vulnerability_ids"] == ["CVE-2024-6387"]
    assert found[f"{UBUNTU}@1.2.0"]["evidence"] == "sbom:cyclonedx"
    assert found[f"{UBUNTU}@1.3.0"]["version"] == "1:8.9p1-3ubuntu0.10" and found[f"{UBUNTU}@1.3.0"]["is_current"]
    assert found[f"{UBUNTU}@1.3.0"]["assets_running"] == one(
        imported.home, "SELECT assets_running FROM golden_images WHERE image_id = ?", [f"{UBUNTU}@1.3.0"])
    # case-insensitive glob, and a version filter
    old = call_tool(imported.ctx, "find_package", {"name": "OpenSSH*", "version": "1:8.9p1-3ubuntu0.1"}).rows
    assert [(r["package_name"], r["image_id"]) for r in old] == [("openssh-client", f"{UBUNTU}@1.1.0")]
    assert old[0]["vulnerability_ids"] == ["CVE-2023-38408", "CVE-2023-48795"]
    assert call_tool(imported.ctx, "find_package", {"name": "no-such-package"}).rows == []


def test_image_builds(imported):
    [build] = call_tool(imported.ctx, "image_builds", {"image_id": f"{UBUNTU}@1.3.0"}).rows
    expected = sql(imported.home, "SELECT source_repo, source_commit, builder_id FROM image_builds WHERE image_id = ?",
                   [f"{UBUNTU}@1.3.0"])
    assert [(build["source_repo"], build["source_commit"], build["builder_id"])] == expected
    assert isinstance(build["materials"], list) and build["materials"][0]["digest"]["gitCommit"] == build["source_commit"]
    assert call_tool(imported.ctx, "image_builds", {"image_id": build["image_ref"]}).rows[0]["image_id"] == f"{UBUNTU}@1.3.0"
    assert call_tool(imported.ctx, "image_builds", {"image_id": f"{UBUNTU}@1.2.0"}).rows == []


def test_compare_image_versions_with_sboms(imported):
    out = call_tool(imported.ctx, "compare_image_versions",
                    {"family": UBUNTU, "from_version": "1.2.0", "to_version": "1.3.0"}).rows
    assert out["from"]["status"] == "production" and out["to"]["is_current"] is True
    components = out["components"]
    assert components["compared"] and components["added"] == [] and components["removed"] == []
    assert components["changed"] == [
        {"name": "openssh-client", "from_version": "1:8.9p1-3ubuntu0.6", "to_version": "1:8.9p1-3ubuntu0.10"},
        {"name": "openssh-server", "from_version": "1:8.9p1-3ubuntu0.6", "to_version": "1:8.9p1-3ubuntu0.10"},
    ]
    assert components["unchanged_count"] == 11
    assert out["vulnerabilities"]["from_scanned"] is False and out["vulnerabilities"]["to_scanned"] is False


def test_compare_image_versions_with_one_scanned_side(imported):
    out = call_tool(imported.ctx, "compare_image_versions",
                    {"family": UBUNTU, "from_version": "1.1.0", "to_version": "1.3.0"}).rows
    assert (out["direction"], out["versions_apart"]) == ("upgrade", 2)
    assert out["components"] == {"compared": False, "reason": f"no SBOM imported for {UBUNTU}@1.1.0"}
    vulns = out["vulnerabilities"]
    assert vulns["from_scanned"] and not vulns["to_scanned"] and "fixed" not in vulns
    findings = {f["vulnerability_id"]: f for f in vulns["from_findings"]}
    assert set(findings) == set(column(imported.home, "SELECT DISTINCT vulnerability_id FROM image_vulnerabilities "
                                                      "WHERE image_id = ?", [f"{UBUNTU}@1.1.0"]))
    # 1.3.0's SBOM has the openssh-server version that fixes CVE-2024-6387
    assert findings["CVE-2024-6387"]["fixed_version"] == findings["CVE-2024-6387"]["to_package_version"] == "1:8.9p1-3ubuntu0.10"
    down = call_tool(imported.ctx, "compare_image_versions",
                     {"family": UBUNTU, "from_version": "1.3.0", "to_version": "1.2.0"}).rows
    assert down["direction"] == "downgrade" and down["components"]["changed"][0]["to_version"] == "1:8.9p1-3ubuntu0.6"
    with pytest.raises(ToolError, match=r"unknown to_version='2.0' of ubuntu-22.04-base; versions: 1.0.0, 1.1.0"):
        call_tool(imported.ctx, "compare_image_versions", {"family": UBUNTU, "from_version": "1.1.0", "to_version": "2.0"})


def test_vulnerability_summary(imported):
    rows = call_tool(imported.ctx, "vulnerability_summary", {}).rows
    expected = sql(imported.home, "SELECT image_id, critical_count, total_count FROM v_image_vuln_summary")
    assert sorted((r["image_id"], r["critical_count"], r["total_count"]) for r in rows) == sorted(expected)
    assert {r["image_id"] for r in rows} == {f"{UBUNTU}@1.1.0", "rhel-9-base@9.4.0"}
    rhel = call_tool(imported.ctx, "vulnerability_summary", {"family": "rhel-9-base", "severity": "critical"}).rows
    assert [(r["image_id"], r["is_current"], r["critical_count"]) for r in rhel] == [("rhel-9-base@9.4.0", True, 1)]
    assert call_tool(imported.ctx, "vulnerability_summary", {"family": "rhel-9-base", "severity": "high"}).rows == []


# -- drift, compliance, tasks -------------------------------------------------------------------


def test_drift_trends(ctx, sample_runs):
    home = sample_runs.home
    rows = call_tool(ctx, "drift_trends", {}).rows
    expected = sql(home, "SELECT day, assets_drifted, open_items FROM drift_trends WHERE severity = 'all' "
                         "AND day > (SELECT max(day) FROM drift_trends) - 30 ORDER BY day")
    assert [(date.fromisoformat(r["day"]), r["assets_drifted"], r["open_items"]) for r in rows] == expected
    assert rows and all(r["severity"] == "all" for r in rows)
    critical = call_tool(ctx, "drift_trends", {"severity": "critical", "days": 1}).rows
    assert len(critical) == 1 and critical[0]["assets_drifted"] == one(
        home, "SELECT assets_drifted FROM drift_trends WHERE severity = 'critical' ORDER BY day DESC LIMIT 1")
    site = call_tool(ctx, "drift_trends", {"site_id": "aws-prod-use1"}).rows
    assert site[-1]["snapshot_id"] == one(home, "SELECT last_snapshot_id FROM sites WHERE site_id = 'aws-prod-use1'")
    latest = sql(home, "SELECT assets_drifted, drift_items FROM drift_reports WHERE site_id = 'aws-prod-use1' "
                       "ORDER BY snapshot_at DESC LIMIT 1")[0]
    assert (site[-1]["assets_drifted"], site[-1]["drift_items"]) == latest
    assert len({r["day"] for r in site}) == len(site)
    with pytest.raises(ToolError, match="unknown site_id 'nowhere'; known sites: aws-prod-use1"):
        call_tool(ctx, "drift_trends", {"site_id": "nowhere"})


def test_compliance_failures_are_the_latest_evidence(ctx, sample_runs):
    home = sample_runs.home
    rows = call_tool(ctx, "compliance_failures", {"control_id": "CM-6", "framework": "nist-800-53"}).rows
    expected = sql(home, "SELECT check_id, asset_id FROM control_evidence_failures WHERE framework_id = 'nist-800-53' "
                         "AND control_id = 'CM-6' AND evaluated_at = (SELECT max(evaluated_at) FROM control_evidence "
                         "WHERE framework_id = 'nist-800-53' AND control_id = 'CM-6')")
    assert rows and sorted((r["check_id"], r["asset_id"]) for r in rows) == sorted(expected)
    assert len({r["evaluated_at"] for r in rows}) == 1
    failing = one(home, "SELECT failing_count FROM v_compliance_status WHERE framework_id = 'nist-800-53' "
                        "AND control_id = 'CM-6' AND check_id = ?", [rows[0]["check_id"]])
    assert sum(1 for r in rows if r["check_id"] == rows[0]["check_id"]) == failing
    vsphere = call_tool(ctx, "compliance_failures", {"control_id": "CC7.2", "site_id": "vsphere-dc1"}).rows
    assert {r["asset_name"] for r in vsphere} == {"app-ldap-024", "db-reports-033"}
    assert all(not r["is_waived"] and r["environment"] == "production" for r in vsphere)
    with pytest.raises(ToolError, match=r"unknown control_id 'CM-6' in framework 'soc2'; known controls: soc2/CC6.1"):
        call_tool(ctx, "compliance_failures", {"control_id": "CM-6", "framework": "soc2"})


def test_waivers_and_waived_failures(imported):
    in_force = call_tool(imported.ctx, "waivers_in_force", {}).rows
    assert [(w["waiver_id"], w["state"], w["asset_name"]) for w in in_force] == [("W-000001", "active", "app-ldap-024")]
    assert in_force[0]["days_left"] == 30 or in_force[0]["days_left"] == 29  # UTC midnight between build and test
    every = call_tool(imported.ctx, "waivers_in_force", {"include_inactive": True}).rows
    assert {(w["waiver_id"], w["state"]) for w in every} == {
        ("W-000001", "active"), ("W-000002", "revoked"), ("W-000003", "expired")}
    assert call_tool(imported.ctx, "waivers_in_force", {"control_id": "CM-6"}).rows == []
    failures = call_tool(imported.ctx, "compliance_failures", {"control_id": "CC7.2", "framework": "soc2"}).rows
    waived = {r["asset_id"]: (r["is_waived"], r["waiver_id"]) for r in failures}
    assert waived[imported.waived_asset] == (True, "W-000001")
    assert sum(1 for v in waived.values() if not v[0]) == 1
    open_only = call_tool(imported.ctx, "compliance_failures",
                          {"control_id": "CC7.2", "framework": "soc2", "include_waived": False}).rows
    assert [r["asset_name"] for r in open_only] == ["db-reports-033"]


def test_list_tasks(ctx, sample_runs, imported):
    assert len(call_tool(ctx, "list_tasks", {}).rows) == one(sample_runs.home, "SELECT count(*) FROM ai_tasks")
    rows = call_tool(imported.ctx, "list_tasks", {}).rows
    assert [r["task_id"] for r in rows] == ["T-900002", "T-900001"]  # newest first
    denied = call_tool(imported.ctx, "list_tasks", {"status": "policy_denied"}).rows
    assert [(r["task_id"], r["risk"], r["site_id"], r["plan_valid"]) for r in denied] == [
        ("T-900002", "high", "aws-prod-use1", False)]
    assert call_tool(imported.ctx, "list_tasks", {"site_id": "vsphere-dc1"}).rows == []


def test_policy_limits(ctx, sample_runs):
    limits = PlanningLimits.load()
    out = call_tool(ctx, "policy_limits", {}).rows
    assert out["limits"] == limits.to_data() and out["limits"]["max_plan_share_of_fleet"] == 0.5
    assert out["limits_file"].endswith("policy/rego/limits.json") and "site" not in out
    fleet = {r[0]: r[2] for r in sql(sample_runs.home, SITE_FLEET_SQL)}["aws-prod-use1"]
    site = call_tool(ctx, "policy_limits", {"site_id": "aws-prod-use1", "target_count": 8}).rows["site"]
    assert site == {
        "site_id": "aws-prod-use1", "environment": "production", "fleet_size": fleet, "is_production": True,
        "plan_cap": limits.plan_cap(fleet), "wave_cap": limits.wave_cap(fleet), "target_count": 8,
        "canary_size": limits.canary_size(8, fleet),
    }
    with pytest.raises(ToolError, match="target_count needs site_id"):
        call_tool(ctx, "policy_limits", {"target_count": 3})
    with pytest.raises(ToolError, match="unknown site_id 'nowhere'"):
        call_tool(ctx, "policy_limits", {"site_id": "nowhere"})


# -- cost ---------------------------------------------------------------------------------------


def bundled_price(provider: str, instance_type: str, region: str) -> float:
    prices = yaml.safe_load(BUNDLED_PRICES_FILE.read_text())["providers"][provider]
    return prices.get("regions", {}).get(region, {}).get(instance_type) or prices["instance_types"][instance_type]


def test_cost_estimate_of_a_site_from_the_bundled_prices(ctx, sample_runs, monkeypatch):
    monkeypatch.delenv(PRICES_ENV, raising=False)
    running = sql(sample_runs.home, "SELECT instance_type, region FROM assets WHERE site_id = 'aws-stg-euw1' "
                                    "AND state IN ('running', 'pending', 'degraded', 'unknown')")
    out = call_tool(ctx, "cost_estimate", {"site_id": "aws-stg-euw1"}).rows
    assert out["priced_count"] == len(running) and out["unpriced_count"] == 0
    assert out["monthly_usd_now"] == round(sum(bundled_price("aws", t, r) for t, r in running) * 730, 2)
    assert out["asset_count"] == one(sample_runs.home, "SELECT count(*) FROM assets WHERE site_id = 'aws-stg-euw1'")
    assert all("eu-west-1" in line["basis"] for line in out["lines"])
    assert out["as_of"] == "2024-10-01" and out["price_files"][0]["path"] == str(BUNDLED_PRICES_FILE)


def test_cost_estimate_lists_what_it_cannot_price(ctx, sample_runs, monkeypatch):
    monkeypatch.delenv(PRICES_ENV, raising=False)
    out = call_tool(ctx, "cost_estimate", {"provider": "azure"}).rows
    unpriced = {g["instance_type"]: g for g in out["unpriced"]}
    assert set(unpriced) == {"Standard_M416ms_v2"}
    assert unpriced["Standard_M416ms_v2"]["asset_ids"] == column(
        sample_runs.home, "SELECT asset_id FROM assets WHERE instance_type = 'Standard_M416ms_v2' AND state = 'running'")
    k8s = call_tool(ctx, "cost_estimate", {"site_id": "k8s-prod-eks"}).rows
    nodes = one(sample_runs.home, "SELECT count(*) FROM assets WHERE site_id = 'k8s-prod-eks' AND kind = 'node' "
                                  "AND state = 'running'")
    assert k8s["priced_count"] == nodes and k8s["on_nodes_count"] == one(
        sample_runs.home, "SELECT count(*) FROM assets WHERE site_id = 'k8s-prod-eks' AND kind = 'workload' "
                          "AND state IN ('running', 'pending', 'degraded', 'unknown')")
    assert all(line["basis"].startswith("aws ") for line in k8s["lines"])  # EKS nodes are EC2 instances


def test_cost_estimate_of_a_resize(ctx, sample_runs, monkeypatch):
    monkeypatch.delenv(PRICES_ENV, raising=False)
    ids = column(sample_runs.home, "SELECT asset_id FROM assets WHERE site_id = 'aws-prod-use1' "
                                   "AND instance_type = 'm6i.xlarge' AND state = 'running'")
    out = call_tool(ctx, "cost_estimate", {"asset_ids": ids, "to_instance_type": "m6i.large"}).rows
    assert out["resized_count"] == len(ids) and ids
    assert out["monthly_usd_now"] == round(len(ids) * 0.192 * 730, 2)
    assert out["monthly_usd_after"] == round(len(ids) * 0.096 * 730, 2)
    assert out["monthly_delta_usd"] == round(out["monthly_usd_after"] - out["monthly_usd_now"], 2)
    with pytest.raises(ToolError, match=r"to_instance_type 'm7i.large' is not in the price catalog for aws.*m6i.large"):
        call_tool(ctx, "cost_estimate", {"asset_ids": ids, "to_instance_type": "m7i.large"})
    with pytest.raises(ToolError, match="unknown asset_ids .*: aws:nowhere:i-0"):
        call_tool(ctx, "cost_estimate", {"asset_ids": ["aws:nowhere:i-0"]})


def test_cost_estimate_reads_the_price_override(ctx, sample_runs, tmp_path, monkeypatch):
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"as_of": "2026-11-01", "source": "negotiated",
                                      "providers": {"azure": {"instance_types": {"Standard_M416ms_v2": 100.0}}}}))
    monkeypatch.setenv(PRICES_ENV, str(prices))
    out = call_tool(ctx, "cost_estimate", {"provider": "azure", "instance_type": "Standard_M416ms_v2"}).rows
    running = one(sample_runs.home, "SELECT count(*) FROM assets WHERE instance_type = 'Standard_M416ms_v2' AND state = 'running'")
    assert out["unpriced"] == [] and out["monthly_usd_now"] == round(running * 100.0 * 730, 2)
    assert out["as_of"] == "2026-11-01" and [f["path"] for f in out["price_files"]][-1] == str(prices)
    prices.write_text("providers: {aws: {instance_types: {m6i.large: free}}}\nas_of: 2026-11-01\n")
    with pytest.raises(ToolError, match=f"price file {prices}: providers.aws.instance_types.m6i.large: must be a positive"):
        call_tool(ctx, "cost_estimate", {"site_id": "aws-stg-euw1"})
