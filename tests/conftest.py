"""Shared, expensive fixtures: one Dagster instance and one sample-estate run per session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")

from dagster import DagsterInstance, instance_for_test  # noqa: E402

from qlrf_pipelines.resources.dbt import ensure_manifest  # noqa: E402
from qlrf_pipelines.resources.control import BUNDLED_RBAC_FILE, ControlStoreResource  # noqa: E402
from qlrf_pipelines.resources.estate import EstateResource  # noqa: E402
from qlrf_pipelines.settings import BUNDLED_SITES_FILE, Paths  # noqa: E402
from qlrf_pipelines.warehouse import query  # noqa: E402


def run_refresh_job(instance: DagsterInstance, home: Path, sites_file: Path):
    """The main job, in-process, against a temporary QLRF_HOME."""
    from qlrf_pipelines.definitions import build_definitions

    defs = build_definitions()
    job = defs.resolve_job_def("refresh_estate_job")
    resources = {
        "estate": EstateResource(home=str(home), sites_file=str(sites_file)),
        "control": ControlStoreResource(home=str(home), url=None, rbac_file=str(BUNDLED_RBAC_FILE)),
        "dbt": defs.resources["dbt"],
    }
    return job.execute_in_process(instance=instance, resources=resources, raise_on_error=False)


def sql(home: Path, statement: str, parameters=None) -> list[tuple]:
    return query(Paths(home).warehouse_path, statement, parameters).rows


@dataclass
class SampleRuns:
    home: Path
    first_result: object
    second_result: object
    reports_after_first: list[tuple]
    lake_files_after_first: dict[str, bytes]


@pytest.fixture(scope="session")
def dagster_instance():
    with instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="session")
def prepared_manifest():
    return ensure_manifest()


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory, dagster_instance, prepared_manifest) -> SampleRuns:
    """The bundled sample estate refreshed twice into one temporary QLRF_HOME."""
    home = tmp_path_factory.mktemp("qlrf-home")
    first = run_refresh_job(dagster_instance, home, BUNDLED_SITES_FILE)
    assert first.success, "first refresh of the sample estate failed"
    reports = sql(home, "SELECT * FROM drift_reports ORDER BY site_id, snapshot_id")
    files = {str(p): p.read_bytes() for p in (home / "lake").rglob("*.parquet")}
    second = run_refresh_job(dagster_instance, home, BUNDLED_SITES_FILE)
    assert second.success, "second refresh of the sample estate failed"
    return SampleRuns(home, first, second, reports, files)


@pytest.fixture(scope="session")
def chat_server():
    """One local OpenAI-compatible server for the session (tests/emulators/openai_chat.py)."""
    from tests.emulators.openai_chat import ChatServer

    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def chat(chat_server):
    """The chat server with an empty script; a test must use every reply it queued."""
    chat_server.reset()
    yield chat_server
    assert chat_server.remaining == 0, "the test left scripted replies unused"
