"""Run the main job in-process against the configured Dagster instance (used by `qlrf run`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from qlrf_pipelines.settings import Paths


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    messages: list[str] = field(default_factory=list)


def refresh_job_with_resources():
    """A module-level job factory, so the multiprocess executor can rebuild the job (with its
    resources bound) in each worker process."""
    from qlrf_pipelines.definitions import build_definitions

    return build_definitions().resolve_job_def("refresh_estate_job")


def run_refresh(paths: Paths, verbose: bool = False, parallel: int = 0) -> RunOutcome:
    """Execute refresh_estate_job: in this process, or with `parallel` worker processes
    (Dagster's multiprocess executor: sites are discovered concurrently, each into its own lake
    files, then the warehouse builds once).

    dbt's own progress lines go to QLRF_HOME/logs/ unless verbose: a cron mail or a terminal
    should show what was built and what failed, not 150 lines per dbt test.
    """
    from dagster import DagsterEventType

    from qlrf_pipelines.definitions import build_definitions
    from qlrf_pipelines.instance import get_instance

    paths.home.mkdir(parents=True, exist_ok=True)
    defs = build_definitions()
    instance = get_instance(paths)
    job = defs.resolve_job_def("refresh_estate_job")
    run_config = {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "INFO"}}}}
    log_dir = paths.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"refresh-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.log"
    with log_path.open("w") as log_file, contextlib.ExitStack() as stack:
        if not verbose:
            stack.enter_context(_stdout_to(log_file))
        if parallel:
            result = _execute_parallel(instance, run_config, parallel)
        else:
            result = job.execute_in_process(
                instance=instance, resources=defs.resources, run_config=run_config, raise_on_error=False
            )
    messages = [f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'} (dbt log: {log_path})"]
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            text = error.message.strip() if error else "failed"
            messages.append(f"  step {event.step_key} failed: {text}")
    # Site failures are logged (not raised) so the other sites and the warehouse still run.
    for record in instance.all_logs(result.run_id):
        if record.dagster_event is None and record.level >= 40 and record.user_message:
            messages.append(f"  {record.step_key or 'run'}: {record.user_message}")
    return RunOutcome(success=result.success, run_id=result.run_id, messages=messages)


def _execute_parallel(instance, run_config: dict, workers: int):
    from dagster import execute_job, reconstructable

    config = dict(run_config) | {"execution": {"config": {"multiprocess": {"max_concurrent": workers}}}}
    return execute_job(reconstructable(refresh_job_with_resources), instance=instance, run_config=config, raise_on_error=False)


@contextlib.contextmanager
def _stdout_to(log_file):
    """Send this process's stdout, and that of worker processes it starts, to the log file."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(log_file.fileno(), 1)
    try:
        with contextlib.redirect_stdout(log_file):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
