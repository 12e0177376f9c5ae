"""`qlrf tick`: evaluate every sensor once and run what it requests, in this process.

This is what the Dagster daemon does continuously, for scripts, cron and the demo. Run keys are
honoured exactly as the daemon does (a request whose run key already ran is skipped) and cursors
persist in QLRF_HOME, so repeated ticks never plan or execute twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from qlrf_pipelines.settings import Paths

RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"


@dataclass
class TickReport:
    sensor: str
    requested: int = 0
    skipped_run_keys: list[str] = field(default_factory=list)
    runs: list[tuple[str, str, bool]] = field(default_factory=list)  # (job, run_id, success)
    skip_message: str | None = None


def _cursor_file(paths: Paths) -> Path:
    return paths.home / "sensor_cursors.json"


def _load_cursors(paths: Paths) -> dict[str, str | None]:
    path = _cursor_file(paths)
    return json.loads(path.read_text()) if path.exists() else {}


def _save_cursors(paths: Paths, cursors: dict[str, str | None]) -> None:
    path = _cursor_file(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(cursors, indent=2, sort_keys=True))
    temp.replace(path)


def run_key_used(instance, sensor_name: str, run_key: str) -> bool:
    from dagster import RunsFilter

    runs = instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: run_key, SENSOR_NAME_TAG: sensor_name}), limit=1)
    return bool(runs)


def tick_sensors(
    defs, instance, paths: Paths, sensor_names: list[str] | None = None, log=print, log_level: str = "INFO"
) -> list[TickReport]:
    from dagster import build_sensor_context

    cursors = _load_cursors(paths)
    reports = []
    for sensor in defs.resolve_all_sensor_defs() if hasattr(defs, "resolve_all_sensor_defs") else defs.sensors:
        if sensor_names and sensor.name not in sensor_names:
            continue
        report = TickReport(sensor.name)
        context = build_sensor_context(
            instance=instance, cursor=cursors.get(sensor.name), definitions=defs, sensor_name=sensor.name,
            resources=defs.resources,
        )
        data = sensor.evaluate_tick(context)
        report.skip_message = data.skip_message
        for request in data.run_requests or []:
            report.requested += 1
            if request.run_key and run_key_used(instance, sensor.name, request.run_key):
                report.skipped_run_keys.append(request.run_key)
                continue
            job_name = request.job_name or sensor.job_name
            job = defs.resolve_job_def(job_name)
            tags = dict(request.tags or {}) | {SENSOR_NAME_TAG: sensor.name}
            if request.run_key:
                tags[RUN_KEY_TAG] = request.run_key
            log(f"{sensor.name}: starting {job_name} (run key {request.run_key})")
            run_config = dict(request.run_config or {})
            run_config.setdefault("loggers", {"console": {"config": {"log_level": log_level}}})
            result = job.execute_in_process(
                run_config=run_config, tags=tags, instance=instance, resources=defs.resources,
                raise_on_error=False,
            )
            report.runs.append((job_name, result.run_id, result.success))
        # A cursor moves only after its requests ran, so a crash mid-tick re-evaluates them
        # and the run keys make the retry harmless.
        cursors[sensor.name] = data.cursor if data.cursor is not None else cursors.get(sensor.name)
        _save_cursors(paths, cursors)
        reports.append(report)
    return reports
