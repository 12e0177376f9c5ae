"""The natural-language path end to end, on a private copy of the sample estate:
`qlrf ask` (a process, talking HTTP to a local OpenAI-compatible server) -> task pending approval
-> approval from the CLI -> approval sensor -> execution run -> task succeeded, with every tool
call the agent made recorded on the task. Plus the Dagster job with the request as run config,
and the drift sensor's plan job using the LLM planner (and falling back to the rule-based one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import build_sensor_context

from qlrf_pipelines.control.store import ControlStore
from qlrf_pipelines.resources.llm import LLMResource
from tests.conftest import sql
from tests.emulators.openai_chat import ChatServer, Fail, Say, Structured, ToolCalls

pytestmark = pytest.mark.integration
QLRF = str(Path(sys.executable).parent / "qlrf")
FAMILY, CURRENT = "ubuntu-22.04-base", "ubuntu-22.04-base@1.3.0"
REQUEST = "patch all production web servers in eu-west to the latest ubuntu-22 golden image, canary first"


@pytest.fixture
def home(sample_runs, tmp_path, monkeypatch):
    """A private copy of the sample estate's lake and warehouse; the control store starts empty."""
    home = tmp_path / "home"
    shutil.copytree(sample_runs.home / "lake", home / "lake")
    shutil.copy(sample_runs.home / "warehouse.duckdb", home / "warehouse.duckdb")
    for name in ("QLRF_SITES", "QLRF_CONTROL_URL", "QLRF_RBAC", "QLRF_PLANNER",
                 "QLRF_LLM_BASE_URL", "QLRF_LLM_MODEL", "QLRF_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QLRF_HOME", str(home))
    return home


@pytest.fixture
def eu_web(home) -> list[str]:
    rows = sql(home, (
        "SELECT asset_id FROM assets WHERE site_id = 'gcp-prod-euw1' AND environment = 'production' "
        "AND name LIKE 'web-%' AND image_family = ? AND image_id <> ? AND state = 'running' ORDER BY name"
    ), [FAMILY, CURRENT])
    assert len(rows) >= 2
    return [r[0] for r in rows]


def script_patch(chat: ChatServer, asset_ids: list[str]) -> None:
    chat.queue(
        Structured({
            "can_serve": True, "intent": "patch", "agent": "patch", "tools": ["query_assets", "get_golden_image"],
            "risk": "medium", "summary": "Patch production web servers in eu-west to the current ubuntu 22.04 image",
            "targets": {"description": "production web servers in eu-west", "regions": ["europe-west1"],
                        "environments": ["production"], "name_globs": ["web-*"], "families": [FAMILY]},
        }),
        ToolCalls([
            ("query_assets", {"site_id": "gcp-prod-euw1", "environment": "production", "image_family": FAMILY,
                              "name_glob": "web-*", "state": "running"}),
            ("get_golden_image", {"family": FAMILY}),
        ]),
        Say("Found them."),
        Structured({"outcome": "plan", "explanation": f"{len(asset_ids)} web servers run ubuntu 22.04 1.2.0",
                    "risk": "medium", "changes": [{"to_image_id": CURRENT, "asset_ids": asset_ids,
                                                   "canary_asset_ids": asset_ids[:1], "reason": "behind"}]}),
    )


def qlrf(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([QLRF, "--home", str(home), *args], capture_output=True, text=True, timeout=300,
                          env=os.environ | (env or {}))


def llm_env(chat: ChatServer) -> dict[str, str]:
    return {"QLRF_LLM_BASE_URL": chat.base_url, "QLRF_LLM_MODEL": "scripted-model", "QLRF_LLM_API_KEY": "sk-e2e"}


def test_qlrf_ask_to_approved_execution_with_recorded_tool_calls(chat, home, eu_web, dagster_instance, prepared_manifest):
    script_patch(chat, eu_web)
    asked = qlrf(home, "ask", REQUEST, "--user", "bob", env=llm_env(chat))
    assert asked.returncode == 0, asked.stderr
    assert "agent: patch" in asked.stdout and "[pending_approval]" in asked.stdout
    assert "step 2: query_assets(" in asked.stdout and "step 2: get_golden_image(" in asked.stdout
    assert "sk-e2e" not in asked.stdout + asked.stderr

    with ControlStore.open(home=home) as store:
        (task,) = store.list_tasks()
        calls = store.tool_invocations(task_id=task.task_id)
    assert task.status == "pending_approval" and task.requested_by == "bob"
    plan = task.plan()
    assert plan.task.agent == "patch" and plan.phases[0].kind == "canary"
    assert sorted(t.asset_id for t in plan.targets) == sorted(eu_web)
    assert [(c["step"], c["tool"]) for c in calls] == [(2, "query_assets"), (2, "get_golden_image")]
    assert calls[0]["arguments"]["site_id"] == "gcp-prod-euw1" and calls[0]["result_size"] == len(eu_web) + 1

    shown = json.loads(qlrf(home, "tasks", "show", task.task_id, "--json").stdout)
    assert [c["tool"] for c in shown["tool_invocations"]] == ["query_assets", "get_golden_image"]
    assert "get_golden_image" in qlrf(home, "tasks", "show", task.task_id).stdout

    # bob (an operator) may ask but not approve; an approver may
    assert qlrf(home, "tasks", "approve", task.task_id, "--user", "bob", "--reason", "mine").returncode != 0
    approved = qlrf(home, "tasks", "approve", task.task_id, "--user", "alice", "--reason", "CAB-9001")
    assert approved.returncode == 0, approved.stderr

    from qlrf_pipelines.definitions import build_definitions

    defs = build_definitions()
    sensor = defs.resolve_sensor_def("approval_sensor")
    data = sensor.evaluate_tick(build_sensor_context(
        instance=dagster_instance, definitions=defs, resources=defs.resources, sensor_name="approval_sensor"))
    (request,) = data.run_requests
    run = defs.resolve_job_def("execute_remediation_job").execute_in_process(
        run_config=request.run_config, instance=dagster_instance, resources=defs.resources, raise_on_error=False)
    assert run.success
    with ControlStore.open(home=home) as store:
        assert store.get_task(task.task_id).status == "succeeded"
        actions = store.actions(task.task_id)
        assert {a["asset_id"] for a in actions} >= set(eu_web) and all(a["dry_run"] for a in actions)
        assert store.verify_audit().ok


def test_qlrf_ask_answers_what_it_cannot_do_and_fails_cleanly_without_an_endpoint(chat, home):
    chat.queue(Structured({"can_serve": False, "answer": "QL-RF cannot open firewall ports: it only moves assets "
                                                         "to golden images through approved plans."}))
    asked = qlrf(home, "ask", "open port 22 to the internet on every VM", "--user", "bob", env=llm_env(chat))
    assert asked.returncode == 0, asked.stderr
    assert "cannot open firewall ports" in asked.stdout and "pending_approval" not in asked.stdout
    with ControlStore.open(home=home) as store:
        assert store.list_tasks() == []

    unconfigured = qlrf(home, "ask", "patch everything")
    assert unconfigured.returncode == 1 and "QLRF_LLM_BASE_URL" in unconfigured.stderr

    chat.queue(Fail(503, "model overloaded"))
    failed = qlrf(home, "ask", "patch everything", env=llm_env(chat))
    assert failed.returncode == 1 and "HTTP 503" in failed.stderr and "model overloaded" in failed.stderr


def resources(home: Path, defs, llm: LLMResource) -> dict:
    return dict(defs.resources) | {"llm": llm}


def test_the_ask_job_takes_the_request_as_run_config(chat, home, eu_web, dagster_instance, prepared_manifest):
    from qlrf_pipelines.definitions import build_definitions

    script_patch(chat, eu_web)
    defs = build_definitions()
    llm = LLMResource(base_url=chat.base_url, model="scripted-model")
    result = defs.resolve_job_def("ask_planner_job").execute_in_process(
        run_config={"ops": {"plan_request": {"config": {"request": REQUEST, "requested_by": "bob"}}}},
        instance=dagster_instance, resources=resources(home, defs, llm), raise_on_error=False,
    )
    assert result.success
    outcome = result.output_for_node("plan_request")
    assert outcome["agent"] == "patch" and outcome["tool_calls"] == 2 and len(outcome["tasks"]) == 1
    (task,) = outcome["tasks"]
    assert task["status"] == "pending_approval"
    (metadata,) = [e.event_specific_data.metadata for e in result.all_events
                   if e.event_type_value == "STEP_OUTPUT" and e.step_key == "plan_request"]
    assert "| 2 | `get_golden_image` |" in metadata["tool_call_log"].value  # what the UI shows with the run
    with ControlStore.open(home=home) as store:
        assert len(store.tool_invocations(task_id=task["task_id"])) == 2
        request_events = [e for e in store.audit_events() if e["action"] == "llm_request"]
    assert request_events and request_events[-1]["details"]["tasks"] == [task["task_id"]]


def test_the_plan_job_uses_the_llm_drift_agent_when_configured_and_falls_back(chat, home, dagster_instance,
                                                                               prepared_manifest):
    from qlrf_pipelines.definitions import build_definitions

    behind = [r[0] for r in sql(home, (
        "SELECT asset_id FROM drift_items WHERE status = 'open' AND drift_type = 'image_outdated' AND site_id = "
        "'aws-prod-use1' AND family = ? AND asset_id IN (SELECT asset_id FROM assets WHERE state = 'running') "
        "ORDER BY asset_id LIMIT 2"
    ), [FAMILY])]
    chat.queue(
        ToolCalls([("query_assets", {"site_id": "aws-prod-use1", "image_family": FAMILY, "state": "running"}),
                   ("get_golden_image", {"family": FAMILY})]),
        Say("ok"),
        Structured({"outcome": "plan", "explanation": "two behind", "risk": "medium",
                    "changes": [{"to_image_id": CURRENT, "asset_ids": behind, "reason": "outdated"}]}),
    )
    defs = build_definitions()
    job = defs.resolve_job_def("plan_remediation_job")
    config = {"ops": {"plan_remediation": {"config": {"snapshot_key": "k" * 64, "requested_by": "sensor:drift_sensor"}}}}
    llm = LLMResource(base_url=chat.base_url, model="scripted-model", planner="llm")
    result = job.execute_in_process(run_config=config, instance=dagster_instance,
                                    resources=resources(home, defs, llm), raise_on_error=False)
    assert result.success
    with ControlStore.open(home=home) as store:
        (task,) = store.list_tasks()
    assert task.plan().task.agent == "drift" and task.status == "pending_approval"
    assert sorted(t.asset_id for t in task.plan().targets) == sorted(behind)

    # the model endpoint fails: the rule-based planner plans instead, and says so
    chat.queue(Fail(500, "down"))
    result = job.execute_in_process(run_config=config, instance=dagster_instance,
                                    resources=resources(home, defs, llm), raise_on_error=False)
    assert result.success
    metadata = [e.event_specific_data.metadata for e in result.all_events
                if e.event_type_value == "STEP_OUTPUT" and e.step_key == "plan_remediation"]
    assert metadata and metadata[0]["planner"].value == "rule_based"
    with ControlStore.open(home=home) as store:
        agents = {t.plan().task.agent for t in store.list_tasks()}
    assert agents == {"drift", "rule_based"}
