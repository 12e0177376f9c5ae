"""The `qlrf` command line as a user runs it: a subprocess against a built warehouse."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def qlrf(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "qlrf"), "--home", str(home), *args], capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_help_documents_every_command(tmp_path):
    text = qlrf(tmp_path, "--help").stdout
    for command in ("run", "query", "drift", "summary", "sites", "prepare", "dev"):
        assert f"  {command}" in text
    assert "--format" in qlrf(tmp_path, "query", "--help").stdout


def test_query_formats(sample_runs):
    sql = "SELECT site_id, asset_count FROM sites ORDER BY site_id"
    table = qlrf(sample_runs.home, "query", sql).stdout
    assert "aws-prod-use1" in table and "site_id" in table.splitlines()[0]
    rows = list(csv.DictReader(io.StringIO(qlrf(sample_runs.home, "query", sql, "--format", "csv").stdout)))
    assert rows[0] == {"site_id": "aws-prod-use1", "asset_count": "70"}
    data = json.loads(qlrf(sample_runs.home, "query", sql, "--format", "json").stdout)
    assert data[0] == {"site_id": "aws-prod-use1", "asset_count": 70} and len(data) == 7


def test_query_is_read_only_and_reports_errors(sample_runs):
    denied = qlrf(sample_runs.home, "query", "DELETE FROM assets", check=False)
    assert denied.returncode != 0 and "read-only" in denied.stderr.lower()
    wrong = qlrf(sample_runs.home, "query", "SELECT nope FROM assets", check=False)
    assert wrong.returncode != 0 and "nope" in wrong.stderr
    assert qlrf(sample_runs.home, "query", "SELECT count(*) AS n FROM assets", "--format", "json").stdout.count("309") == 1


def test_drift_and_summary(sample_runs):
    drift = qlrf(sample_runs.home, "drift", "--site", "aws-prod-use1", "--severity", "critical", "--format", "json").stdout
    items = json.loads(drift)
    assert {"anchor-behind-01", "anchor-revoked-01"} <= {i["asset_name"] for i in items}
    assert {i["severity"] for i in items} == {"critical"}
    assert all(i["drift_type"] != "config" or i["rule_id"] for i in items)
    config = json.loads(qlrf(sample_runs.home, "drift", "--site", "vsphere-dc1", "--type", "config", "--format", "json").stdout)
    assert config and {i["drift_type"] for i in config} == {"config"}
    assert {"rule_id", "expected", "actual", "age_days"} <= set(config[0])
    image = json.loads(qlrf(sample_runs.home, "drift", "--type", "image", "--limit", "500", "--format", "json").stdout)
    assert image and all(i["drift_type"].startswith("image_") and i["rule_id"] is None for i in image)
    summary = qlrf(sample_runs.home, "summary").stdout
    assert "Sites (7)" in summary and "Drift items" in summary and "duckdb " in summary


def test_duckdb_cli_reads_the_warehouse(sample_runs):
    warehouse = sample_runs.home / "warehouse.duckdb"
    done = subprocess.run(
        [str(BIN / "duckdb"), "-readonly", "-csv", str(warehouse), "SELECT count(*) FROM drift_items WHERE severity = 'critical'"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.splitlines()[-1]) > 0


def test_sites_commands(tmp_path):
    listed = qlrf(tmp_path, "sites", "list").stdout
    assert "vsphere-dc1" in listed and "kubernetes" in listed
    assert "7 sites ok" in qlrf(tmp_path, "sites", "validate").stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites:\n  - id: X!\n    provider: aws\n    name: n\n    location: l\n    environment: e\n")
    failed = qlrf(tmp_path, "sites", "validate", str(bad), check=False)
    assert failed.returncode != 0 and str(bad) in failed.stderr and "field id" in failed.stderr


def test_sites_check_reports_each_site(tmp_path):
    import yaml

    from qlrf_pipelines.settings import BUNDLED_SITES_FILE

    bundled = yaml.safe_load(BUNDLED_SITES_FILE.read_text())
    sites = bundled["sites"][:2]
    for site in sites:
        site["sample"] = str(BUNDLED_SITES_FILE.parent / site["sample"])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
    }))
    sites.append({
        "id": "k8s-unreachable", "provider": "kubernetes", "name": "nobody home", "location": "lab",
        "environment": "staging", "credentials": {"kubeconfig_env": "QLRF_TEST_KUBECONFIG"},
        "settings": {"timeout_seconds": 2},
    })
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "sites": sites}))
    done = subprocess.run(
        [str(BIN / "qlrf"), "--home", str(tmp_path), "--sites", str(path), "sites", "check"],
        capture_output=True, text=True, timeout=120, env=os.environ | {"QLRF_TEST_KUBECONFIG": str(kubeconfig)},
    )
    assert done.returncode == 1
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[2:]}
    assert " ok " in lines["aws-prod-use1"] and "sample payload" in lines["aws-prod-use1"]
    assert " failed " in lines["k8s-unreachable"] and "k8s-unreachable" in lines["k8s-unreachable"]
    assert "not-a-real-token" not in done.stdout + done.stderr


def test_permissions_match_the_connectors_and_the_readme(tmp_path):
    from qlrf_pipelines.connectors.live import live_module

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    printed = qlrf(tmp_path, "permissions").stdout
    for provider in ("aws", "azure", "gcp", "vsphere", "kubernetes"):
        for kind, items in live_module(provider).READ_PERMISSIONS.items():
            for item in items:
                if isinstance(item, str) and kind != "notes":
                    assert item in printed
                    assert f"`{item}`" in readme, f"README does not list {provider} {item}"
