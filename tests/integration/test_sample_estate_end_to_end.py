"""The main job on the bundled sample estate, then SQL on the warehouse contract."""

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import sql

pytestmark = pytest.mark.integration

CONTRACT_TABLES = [
    "sites", "assets", "asset_tags", "golden_image_families", "golden_images", "images",
    "image_deployments", "drift_reports", "drift_items",
]


def test_contract_tables_exist_in_main_schema(sample_runs):
    names = {row[0] for row in sql(sample_runs.home, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")}
    assert set(CONTRACT_TABLES) <= names
    kinds = dict(sql(sample_runs.home, "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"))
    assert kinds["images"] == "VIEW"


def test_sites_and_assets_cover_every_provider(sample_runs):
    sites = sql(sample_runs.home, "SELECT site_id, provider, environment, snapshot_count, asset_count FROM sites ORDER BY site_id")
    assert len(sites) == 7
    assert {row[1] for row in sites} == {"aws", "azure", "gcp", "vsphere", "kubernetes"}
    assert all(row[3] == 2 for row in sites), "two runs, two snapshots per site"
    by_site = dict(sql(sample_runs.home, "SELECT site_id, count(*) FROM assets GROUP BY site_id"))
    assert by_site == {row[0]: row[4] for row in sites}
    assert sum(by_site.values()) == 309
    kinds = dict(sql(sample_runs.home, "SELECT kind, count(*) FROM assets GROUP BY kind"))
    assert set(kinds) == {"vm", "node", "workload"}
    # Asset ids are stable across snapshots: the second run sees the same ids as the first.
    history = sql(
        sample_runs.home,
        "SELECT count(DISTINCT snapshot_id), count(DISTINCT asset_id), "
        "count(DISTINCT asset_id) FILTER (WHERE asset_id IN (SELECT asset_id FROM assets)) FROM image_deployments",
    )
    assert history[0][0] == 14
    assert history[0][1] == history[0][2] > 300
    once = sql(
        sample_runs.home,
        "SELECT count(*) FROM (SELECT asset_id FROM image_deployments GROUP BY asset_id HAVING count(DISTINCT snapshot_id) <> 2)",
    )
    assert once == [(0,)]


def test_asset_tags_and_resolved_images(sample_runs):
    tags = sql(sample_runs.home, "SELECT count(*) FROM asset_tags t JOIN assets a USING (asset_id)")
    assert tags[0][0] > 309
    row = sql(
        sample_runs.home,
        "SELECT image_family, image_version, image_status FROM assets WHERE site_id = 'aws-prod-use1' AND name = 'anchor-current-01'",
    )
    assert row == [("ubuntu-22.04-base", "1.3.0", "production")]


def test_golden_image_catalog(sample_runs):
    families = dict(
        sql(sample_runs.home, "SELECT family, current_version FROM golden_image_families WHERE current_basis = 'production'")
    )
    assert families == {"ubuntu-22.04-base": "1.3.0", "rhel-9-base": "9.4.0", "windows-2022-base": "2026.10"}
    containers = dict(
        sql(sample_runs.home, "SELECT family, current_version FROM golden_image_families WHERE current_basis = 'newest_seen'")
    )
    assert containers["python-3.12"] == "3.12.8-r2"
    ubuntu = sql(
        sample_runs.home,
        "SELECT version, status, is_current, artifact_count FROM golden_images WHERE family = 'ubuntu-22.04-base' ORDER BY version_key",
    )
    assert [(v, s, c) for v, s, c, _ in ubuntu] == [
        ("1.0.0", "deprecated", False), ("1.1.0", "deprecated", False), ("1.2.0", "production", False),
        ("1.3.0", "production", True), ("1.4.0", "testing", False),
    ]
    # An AMI in each of two AWS regions, an Azure gallery version, a GCP image and a vSphere template.
    assert all(count >= 5 for *_, count in ubuntu)
    assert sql(sample_runs.home, "SELECT count(*) FROM images")[0][0] == sql(sample_runs.home, "SELECT count(*) FROM golden_images")[0][0]


@pytest.mark.parametrize("site_id", ["aws-prod-use1", "aws-stg-euw1", "azure-prod-weu", "gcp-prod-euw1", "vsphere-dc1"])
def test_expected_drift_items_on_vm_sites(sample_runs, site_id):
    items = {
        name: rest
        for name, *rest in sql(
            sample_runs.home,
            "SELECT asset_name, drift_type, severity, asset_version, current_version, versions_behind, days_behind "
            "FROM drift_items WHERE site_id = ? AND asset_name LIKE 'anchor-%' "
            "AND status = 'open' AND drift_type <> 'config'",
            [site_id],
        )
    }
    production = site_id != "aws-stg-euw1"
    assert "anchor-current-01" not in items
    assert items["anchor-behind-01"] == ["image_deprecated", "critical", "1.0.0", "1.3.0", 3, 189]
    assert items["anchor-revoked-01"][:2] == ["image_revoked", "critical"]
    assert items["anchor-unknown-01"][:2] == ["image_unknown", "high" if production else "medium"]


def test_kubernetes_drift_and_node_images(sample_runs):
    items = dict(
        (name, (kind, severity))
        for name, kind, severity in sql(
            sample_runs.home,
            "SELECT asset_name, drift_type, severity FROM drift_items WHERE site_id = 'k8s-prod-eks' "
            "AND asset_name LIKE 'web/anchor-%' AND status = 'open' AND drift_type <> 'config'",
        )
    )
    assert "web/anchor-current" not in items
    assert items["web/anchor-behind"][0] in {"image_outdated", "image_deprecated"}
    assert items["web/anchor-unknown"] == ("image_unknown", "high")
    # EKS nodes run AMIs discovered by the AWS site: matched across sites.
    nodes = sql(
        sample_runs.home,
        "SELECT count(*), count(image_id) FROM assets WHERE site_id = 'k8s-prod-eks' AND kind = 'node'",
    )
    assert nodes[0][0] >= 3 and nodes[0][1] == nodes[0][0]


def test_drift_items_are_consistent(sample_runs):
    (total, severities, orphans), = sql(
        sample_runs.home,
        "SELECT count(*), count(DISTINCT severity), count(*) FILTER (WHERE asset_id NOT IN (SELECT asset_id FROM assets)) "
        "FROM drift_items WHERE status = 'open'",
    )
    assert total > 50 and severities == 4 and orphans == 0
    # the same estate twice: every item opened with the first snapshot and is still open
    assert sql(sample_runs.home, "SELECT count(*) FROM drift_items WHERE status <> 'open'") == [(0,)]
    detail = sql(
        sample_runs.home,
        "SELECT detail FROM drift_items WHERE site_id = 'aws-prod-use1' AND asset_name = 'anchor-behind-01' "
        "AND status = 'open' AND drift_type <> 'config'",
    )[0][0]
    assert "1.0.0" in detail and "1.3.0" in detail


def test_second_run_adds_snapshots_and_keeps_history(sample_runs):
    first_reports = sample_runs.reports_after_first
    assert len(first_reports) == 7
    now = sql(sample_runs.home, "SELECT * FROM drift_reports ORDER BY site_id, snapshot_id")
    assert len(now) == 14
    assert [r for r in now if r in first_reports] == first_reports, "earlier report rows are never rewritten"
    for path, content in sample_runs.lake_files_after_first.items():
        assert Path(path).read_bytes() == content, f"{path} was rewritten"
    # every run lands a new snapshot of each site (discovery) and of the control store; the
    # configuration (site `config`: drift rules, compliance catalog) lands only when it changed,
    # so the second run adds none (compliance evidence, site `compliance`, is tested on its own)
    files_per_folder = Counter(path.parent.relative_to(sample_runs.home / "lake") for path in
                               (sample_runs.home / "lake").rglob("*.parquet"))
    per_run = {folder: count for folder, count in files_per_folder.items() if folder.name not in ("site=config", "site=compliance")}
    assert len(per_run) >= 7 * 3 and set(per_run.values()) == {2}
    assert {str(f) for f, count in files_per_folder.items() if f.name == "site=config" and count == 1} >= {"raw/drift_rules/site=config"}
    assert all(count == 1 for folder, count in files_per_folder.items() if folder.name == "site=config")
    rates = sql(sample_runs.home, "SELECT min(drift_rate), max(drift_rate) FROM drift_reports")[0]
    assert 0 < rates[0] <= rates[1] < 1


def test_lake_files_are_typed_parquet(sample_runs):
    path = next((sample_runs.home / "lake" / "raw" / "assets" / "site=vsphere-dc1").glob("*.parquet"))
    table = pq.read_table(path)
    assert table.num_rows == 50
    assert set(table.column("site_id").to_pylist()) == {"vsphere-dc1"}
    assert str(table.schema.field("discovered_at").type) == "timestamp[us, tz=UTC]"


def test_run_reports_materializations_and_checks(sample_runs):
    from dagster import DagsterEventType

    result = sample_runs.first_result
    materialized = {
        e.asset_key.to_user_string() for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    assert {"lake/raw_assets", "lake/raw_images", "lake/raw_sites", "drift_items", "assets", "golden_images"} <= materialized
    checks = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    # dbt's tests only: the compliance checks' results are tested in test_compliance_sample.py
    checks = [e for e in checks if e.step_key != "evaluate_compliance"]
    failed = {e.event_specific_data.check_name: e.event_specific_data.severity.value for e in checks if not e.event_specific_data.passed}
    # the only failure is a warning: no production image has provenance and an SBOM until some are imported
    assert checks and failed == {"production_images_have_provenance_and_sbom": "WARN"}


def test_image_tags_and_deployment_summary(sample_runs):
    tags = dict(sql(
        sample_runs.home,
        "SELECT key, count(*) FROM image_tags WHERE key IN ('qlrf:family', 'qlrf:version', 'qlrf:status') GROUP BY key",
    ))
    assert tags and len(set(tags.values())) == 1, tags
    summary = dict(sql(
        sample_runs.home,
        "SELECT image_id, assets FROM v_image_deployment_summary WHERE family = 'ubuntu-22.04-base'",
    ))
    assert set(summary) == {f"ubuntu-22.04-base@{v}" for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0")}
    on_ubuntu = sql(
        sample_runs.home,
        "SELECT count(*) FROM assets WHERE image_family = 'ubuntu-22.04-base' AND state <> 'terminated'",
    )[0][0]
    assert sum(summary.values()) == on_ubuntu > 0
