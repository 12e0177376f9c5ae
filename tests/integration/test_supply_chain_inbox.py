"""Files dropped into QLRF_HOME/inbox/: inbox_sensor (build_sensor_context) -> import runs ->
lake; bad files to inbox/rejected/ with a .error, never stopping the others; `qlrf import`."""

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import build_sensor_context

from qlrf_pipelines.supply_chain.landing import imported_ids

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "supply_chain"


@pytest.fixture
def defs(tmp_path, monkeypatch, prepared_manifest):
    from qlrf_pipelines.definitions import build_definitions

    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    for name in ("QLRF_SITES", "QLRF_LAKE_URI"):
        monkeypatch.delenv(name, raising=False)
    return build_definitions()


def tick_and_run(defs, instance):
    sensor = defs.resolve_sensor_def("inbox_sensor")
    data = sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs, resources=defs.resources))
    job = defs.resolve_job_def("import_supply_chain_job")
    results = {}
    for request in data.run_requests:
        name = request.run_config["ops"]["import_inbox_file"]["config"]["filename"]
        results[name] = job.execute_in_process(
            run_config=request.run_config, instance=instance, resources=defs.resources, raise_on_error=False,
            tags={"dagster/run_key": request.run_key},
        )
    return data, results


def test_inbox_imports_good_files_and_rejects_bad_ones(defs, dagster_instance):
    home = Path(defs.resources["estate"].home)
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    for name in ("trivy-image.json", "cyclonedx-1.5.json", "slsa-provenance.intoto.json"):
        shutil.copy(FIXTURES / name, inbox / name)
    (inbox / "truncated-grype.json").write_text((FIXTURES / "grype-image.json").read_text()[:300])

    data, results = tick_and_run(defs, dagster_instance)
    assert len(data.run_requests) == 4
    assert all(results[n].success for n in ("trivy-image.json", "cyclonedx-1.5.json", "slsa-provenance.intoto.json"))
    assert not results["truncated-grype.json"].success
    assert sorted(p.name for p in (inbox / "imported").iterdir()) == [
        "cyclonedx-1.5.json", "slsa-provenance.intoto.json", "trivy-image.json",
    ]
    error = (inbox / "rejected" / "truncated-grype.json.error").read_text()
    assert "truncated-grype.json" in error
    assert len(imported_ids(home / "lake")) == 3
    files = sorted((home / "lake" / "raw" / "image_vulnerabilities").rglob("*.parquet"))
    ids = [v for f in files for v in pq.read_table(f).column("vulnerability_id").to_pylist()]
    assert len(ids) == 5 and all(v.startswith(("CVE-", "GHSA-")) for v in ids)

    # Nothing left: the next tick asks for nothing. The same bytes dropped again are a no-op.
    assert tick_and_run(defs, dagster_instance)[0].skip_message
    shutil.copy(FIXTURES / "trivy-image.json", inbox / "trivy-again.json")
    _, again = tick_and_run(defs, dagster_instance)
    assert again["trivy-again.json"].success
    assert len(imported_ids(home / "lake")) == 3
    assert len(list((home / "lake" / "raw" / "image_vulnerabilities").rglob("*.parquet"))) == 3


def test_import_command(tmp_path):
    qlrf = str(Path(sys.executable).parent / "qlrf")
    bad = tmp_path / "cyclonedx-1.2.json"
    bad.write_text('{"bomFormat": "CycloneDX", "specVersion": "1.2", "version": 1, "components": []}')
    done = subprocess.run(
        [qlrf, "--home", str(tmp_path / "home"), "import", str(FIXTURES / "grype-image.json"), str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert "imported" in done.stdout and "grype" in done.stdout and "4 vulnerabilities" in done.stdout
    assert str(bad) in done.stderr and "1.2" in done.stderr
