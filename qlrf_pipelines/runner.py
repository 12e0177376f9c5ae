"""Run the main job in-process against the configured Dagster instance (used by `qlrf run`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from qlrf_pipelines.settings import Paths


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    messages: list[str] = field(default_factory=list)


def run_refresh(paths: Paths) -> RunOutcome:
    from dagster import DagsterEventType

    from qlrf_pipelines.definitions import build_definitions
    from qlrf_pipelines.instance import get_instance

    paths.home.mkdir(parents=True, exist_ok=True)
    instance = get_instance(paths)
    defs = build_definitions()
    job = defs.get_job_def("refresh_estate_job")
    result = job.execute_in_process(instance=instance, resources=defs.resources, raise_on_error=False)
    messages = [f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'}"]
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_key:
            error = event.event_specific_data.error
            messages.append(f"  {event.step_key}: {error.message.strip() if error else 'failed'}")
        if event.event_type == DagsterEventType.ENGINE_EVENT:
            continue
    for record in instance.all_logs(result.run_id):
        entry = record.user_message
        if record.level >= 40 and record.dagster_event is None and entry:
            messages.append(f"  error: {entry}")
    return RunOutcome(success=result.success, run_id=result.run_id, messages=messages)
