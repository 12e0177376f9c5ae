"""inbox_sensor: every new file in QLRF_HOME/inbox/ starts one import run (run key = its content
hash, so the same bytes dropped twice are imported once)."""

import hashlib

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from qlrf_pipelines.jobs.imports import import_supply_chain_job, inbox_dir
from qlrf_pipelines.resources.estate import EstateResource


@sensor(
    job=import_supply_chain_job,
    name="inbox_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Import files dropped into QLRF_HOME/inbox/ (Trivy, Grype, SPDX, CycloneDX, SLSA).",
)
def inbox_sensor(context: SensorEvaluationContext, estate: EstateResource):
    inbox = inbox_dir(estate.paths.home)
    files = sorted(p for p in inbox.glob("*") if p.is_file() and not p.name.startswith(".")) if inbox.is_dir() else []
    if not files:
        return SkipReason(f"no files in {inbox}")
    requests = []
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        requests.append(
            RunRequest(
                run_key=f"import:{digest}:{path.name}",
                run_config={"ops": {"import_inbox_file": {"config": {"filename": path.name}}}},
                tags={"qlrf/import_file": path.name[:60], "qlrf/content_sha256": digest[:16]},
            )
        )
    return requests
