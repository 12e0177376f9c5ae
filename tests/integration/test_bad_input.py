"""Bad input gets a clear error naming the file or site, and loses nothing."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.sample import discover_from_sample
from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from qlrf_pipelines.sites import load_sites
from tests.conftest import run_refresh_job, sql

pytestmark = pytest.mark.integration
QLRF = str(Path(sys.executable).parent / "qlrf")


def small_estate(folder: Path, site_ids: list[str]) -> Path:
    """A copy of part of the bundled estate, so the test can break one payload."""
    bundled = yaml.safe_load(BUNDLED_SITES_FILE.read_text())
    chosen = [site for site in bundled["sites"] if site["id"] in site_ids]
    for site in chosen:
        target = folder / site["sample"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(BUNDLED_SITES_FILE.parent / site["sample"], target)
    path = folder / "sites.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "sites": chosen}))
    return path


def step_failures(result) -> str:
    return "\n".join(
        e.event_specific_data.error.message for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE
    )


def test_malformed_payload_fails_only_its_site(tmp_path, dagster_instance, prepared_manifest):
    sites_file = small_estate(tmp_path / "estate", ["aws-stg-euw1", "gcp-prod-euw1"])
    home = tmp_path / "home"
    assert run_refresh_job(dagster_instance, home, sites_file).success
    aws_before = {p: p.read_bytes() for p in (home / "lake").rglob("site=aws-stg-euw1/*.parquet")}
    assert len(aws_before) == 3

    payload_path = tmp_path / "estate" / "aws" / "aws-stg-euw1.json"
    payload = json.loads(payload_path.read_text())
    del payload["regions"]["eu-west-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0]["InstanceId"]
    payload_path.write_text(json.dumps(payload))

    second = run_refresh_job(dagster_instance, home, sites_file)
    assert not second.success
    message = step_failures(second)
    assert "aws-stg-euw1" in message and "InstanceId" in message and str(payload_path) in message
    assert "gcp-prod-euw1" not in message

    # The failed site wrote nothing and kept its earlier snapshot; the other site landed again.
    snapshots = [p for p in (home / "lake").rglob("site=aws-stg-euw1/*.parquet") if "discovery_failures" not in p.parts]
    assert {p: p.read_bytes() for p in snapshots} == aws_before
    assert len(list((home / "lake" / "raw" / "discovery_failures").rglob("*.parquet"))) == 1
    assert len(list((home / "lake").rglob("site=gcp-prod-euw1/*.parquet"))) == 6
    assert not list((home / "lake").rglob("*.tmp"))
    # The warehouse was still rebuilt: the failed site's last good snapshot stays current.
    counts = dict(sql(home, "SELECT site_id, snapshot_count FROM sites"))
    assert counts == {"aws-stg-euw1": 1, "gcp-prod-euw1": 2}
    stale = {row[0]: row[1:] for row in sql(home, "SELECT site_id, is_stale, last_failure_call, snapshot_age_hours FROM sites")}
    assert stale["gcp-prod-euw1"][0] is False
    assert stale["aws-stg-euw1"][0] is True and "normalize" in stale["aws-stg-euw1"][1]
    assert stale["aws-stg-euw1"][2] >= 0
    assert sql(home, "SELECT count(*) FROM assets WHERE site_id = 'aws-stg-euw1'") == [(35,)]
    assert sql(home, "SELECT count(*) FROM drift_reports") == [(3,)]


def test_unreadable_payload_names_site_and_file(tmp_path):
    sites_file = small_estate(tmp_path, ["vsphere-dc1"])
    sites = load_sites(sites_file)
    site = sites.site("vsphere-dc1")
    path = sites.sample_path(site)
    path.write_text(path.read_text()[:500])
    with pytest.raises(ConnectorError) as err:
        discover_from_sample(site, path, discovered_at=None)
    assert "site vsphere-dc1" in str(err.value) and str(path) in str(err.value) and "not valid JSON" in str(err.value)


def test_invalid_sites_file_stops_before_writing(tmp_path):
    bad = tmp_path / "sites.yaml"
    bad.write_text(
        "sites:\n  - id: aws-one\n    provider: aws\n    name: n\n    location: us-east-1\n    environment: production\n"
        "    regions: us-east-1\n"
    )
    home = tmp_path / "home"
    done = subprocess.run([QLRF, "--home", str(home), "--sites", str(bad), "run"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert str(bad) in done.stderr and "site 'aws-one'" in done.stderr and "field regions" in done.stderr
    assert not (home / "lake").exists()


def test_unexpected_payload_shape_is_a_site_error(tmp_path):
    sites_file = small_estate(tmp_path, ["aws-prod-use1"])
    sites = load_sites(sites_file)
    site = sites.site("aws-prod-use1")
    path = sites.sample_path(site)
    payload = json.loads(path.read_text())
    payload["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0]["InstanceId"] = 12345
    path.write_text(json.dumps(payload))
    with pytest.raises(ConnectorError) as err:
        discover_from_sample(site, path, discovered_at=None)
    assert "site aws-prod-use1" in str(err.value) and str(path) in str(err.value)
