"""Live discovery through the main job: a live Kubernetes site (the API server emulator) beside a
sample site lands, builds the warehouse and gets drift, like the sample estate. And the main job
with Dagster's multiprocess executor (`qlrf run --parallel`)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qlrf_pipelines.sample.catalog import GOLDEN_REGISTRY
from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from tests.conftest import run_refresh_job, sql
from tests.emulators.kubernetes import KubernetesEmulator, write_kubeconfig
from tests.integration.test_bad_input import small_estate

pytestmark = pytest.mark.integration
TOKEN = "qlrf-e2e-" + secrets.token_hex(16)


def test_live_site_through_the_main_job(tmp_path, monkeypatch, dagster_instance, prepared_manifest):
    sites_file = small_estate(tmp_path / "estate", ["vsphere-dc1"])
    with KubernetesEmulator(tokens={TOKEN}) as emulator:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", emulator.url, {"prod": TOKEN})
        monkeypatch.setenv("QLRF_E2E_KUBECONFIG", str(kubeconfig))
        estate = yaml.safe_load(sites_file.read_text())
        estate["sites"].append({
            "id": "k8s-live", "provider": "kubernetes", "name": "live cluster", "location": "prod-eks-use1",
            "environment": "production", "account": "prod-eks-use1",
            "credentials": {"kubeconfig_env": "QLRF_E2E_KUBECONFIG", "context": "prod"},
            "settings": {"golden_registry": GOLDEN_REGISTRY, "page_size": 25},
        })
        sites_file.write_text(yaml.safe_dump(estate))
        home = tmp_path / "home"
        result = run_refresh_job(dagster_instance, home, sites_file)
    assert result.success
    sites = dict(sql(home, "SELECT site_id, asset_count FROM sites"))
    assert sites["vsphere-dc1"] == 50 and sites["k8s-live"] > 100
    kinds = dict(sql(home, "SELECT kind, count(*) FROM assets WHERE site_id = 'k8s-live' GROUP BY kind"))
    assert kinds["node"] > 0 and kinds["workload"] > 0
    drift = dict(sql(home, "SELECT drift_type, count(*) FROM drift_items WHERE site_id = 'k8s-live' GROUP BY drift_type"))
    assert drift.get("image_unknown", 0) > 0 and drift.get("image_outdated", 0) + drift.get("image_deprecated", 0) > 0
    lake_bytes = b"".join(p.read_bytes() for p in (home / "lake").rglob("*.parquet"))
    assert TOKEN.encode() not in lake_bytes


def test_parallel_refresh_lands_every_site(tmp_path):
    sites_file = small_estate(tmp_path / "estate", ["aws-stg-euw1", "gcp-prod-euw1", "k8s-stg-gke"])
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_HOME"))}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "qlrf"), "--home", str(home), "--sites", str(sites_file),
         "run", "--parallel", "2", "--no-tick", "--quiet"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sql(home, "SELECT count(*), sum(asset_count) FROM sites") == [(3, 35 + 40 + 24)]
    # Each worker wrote only its own site's files: one snapshot per site and entity.
    for site in ("aws-stg-euw1", "gcp-prod-euw1", "k8s-stg-gke"):
        assert len(list((home / "lake" / "raw" / "assets" / f"site={site}").glob("*.parquet"))) == 1
