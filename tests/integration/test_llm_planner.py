"""The LLM planner against a local OpenAI-compatible server, over HTTP, on the sample estate.

The real `openai` client and `instructor` talk to tests/emulators/openai_chat.py, which replies
what each test scripts: tool calls, structured answers, errors, delays. The warehouse is the
shared sample estate's (read-only); plans go through the real validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlrf_pipelines.planning.llm.orchestrator import AskOutcome, ask, plan_drift
from qlrf_pipelines.planning.llm.settings import LLMSettings
from qlrf_pipelines.planning.tools import ToolContext
from qlrf_pipelines.policy.validate import validate_plan
from qlrf_pipelines.settings import Paths
from tests.conftest import sql
from tests.emulators.openai_chat import ChatServer, Fail, Say, Slow, Structured, ToolCalls

pytestmark = pytest.mark.integration

REQUEST = "patch all production web servers in eu-west to the latest ubuntu-22 golden image, canary first"
SECRET = "sk-test-never-in-a-prompt"
FAMILY, CURRENT = "ubuntu-22.04-base", "ubuntu-22.04-base@1.3.0"


@pytest.fixture(scope="module")
def ctx(sample_runs) -> ToolContext:
    paths = Paths(sample_runs.home)
    return ToolContext(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir)


@pytest.fixture(scope="module")
def eu_web(sample_runs) -> list[str]:
    """Running production web servers at gcp-prod-euw1 behind on ubuntu 22.04 (on 1.2.0)."""
    rows = sql(sample_runs.home, (
        "SELECT asset_id FROM assets WHERE site_id = 'gcp-prod-euw1' AND environment = 'production' "
        "AND name LIKE 'web-%' AND image_family = ? AND image_id <> ? AND state = 'running' ORDER BY name"
    ), [FAMILY, CURRENT])
    assert len(rows) >= 2
    return [r[0] for r in rows]


def settings(chat: ChatServer, **overrides) -> LLMSettings:
    return LLMSettings(base_url=chat.base_url, model="scripted-model", api_key=SECRET, **overrides)


def patch_spec() -> Structured:
    return Structured({
        "can_serve": True, "intent": "patch", "agent": "patch", "tools": ["query_assets", "get_golden_image"],
        "risk": "medium", "canary_first": True, "summary": "Patch production web servers in eu-west to ubuntu 22.04 current",
        "targets": {"description": "production web servers in eu-west", "regions": ["europe-west1"],
                    "environments": ["production"], "name_globs": ["web-*"], "families": [FAMILY]},
    })


def gather_eu_web() -> list:
    return [
        ToolCalls([
            ("query_assets", {"site_id": "gcp-prod-euw1", "environment": "production", "image_family": FAMILY,
                              "name_glob": "web-*"}),
            ("get_golden_image", {"family": FAMILY}),
        ]),
        Say("I have the assets and the current image."),
    ]


def plan_for(asset_ids: list[str], canary: list[str] | None = None, image: str = CURRENT) -> Structured:
    return Structured({
        "outcome": "plan", "explanation": f"{len(asset_ids)} web servers run an older ubuntu 22.04", "risk": "medium",
        "changes": [{"to_image_id": image, "asset_ids": asset_ids, "canary_asset_ids": canary or asset_ids[:1],
                     "reason": "behind the current golden image"}],
    })


def run(chat, ctx, **overrides) -> AskOutcome:
    return ask(REQUEST, requested_by="bob", settings=settings(chat, **overrides), tool_context=ctx)


def ctx_home(ctx: ToolContext) -> Path:
    return Path(ctx.warehouse_path).parent


def tool_messages(request: dict) -> list[dict]:
    return [m for m in request["messages"] if m.get("role") == "tool"]


# ---------------------------------------------------------------- a good plan

def test_a_good_plan_from_request_to_validated_plan(chat, ctx, eu_web):
    chat.queue(patch_spec(), *gather_eu_web(), plan_for(eu_web, canary=[eu_web[1]]))
    outcome = run(chat, ctx)
    assert outcome.error is None and outcome.kind == "plans"
    (plan,) = outcome.plans
    assert plan.site_id == "gcp-prod-euw1" and plan.to_image_id == CURRENT and plan.environment == "production"
    assert sorted(t.asset_id for t in plan.targets) == sorted(eu_web)
    assert plan.phases[0].kind == "canary" and plan.phases[0].asset_ids == [eu_web[1]]
    assert all(t.from_image_id == "ubuntu-22.04-base@1.2.0" and t.to_image_ref for t in plan.targets)
    assert plan.task.agent == "patch" and plan.task.tools_used == ["query_assets", "get_golden_image"]
    assert "query_assets(" in plan.evidence.query
    _, verdicts = validate_plan(plan, known_asset_ids=outcome.grounded_asset_ids)
    assert all(v.allowed for v in verdicts), [v for v in verdicts if not v.allowed]

    # every tool call recorded with the model step that asked for it
    assert [(i.step, i.tool, i.error) for i in outcome.invocations] == [
        (2, "query_assets", None), (2, "get_golden_image", None)]
    listed = sql(ctx_home(ctx), (
        "SELECT count(*) FROM assets WHERE site_id = 'gcp-prod-euw1' AND environment = 'production' "
        "AND image_family = ? AND name GLOB 'web-*'"
    ), [FAMILY])[0][0]
    assert outcome.invocations[0].result_size == listed > len(eu_web)  # also the ones already current
    assert outcome.steps == 4 and outcome.tokens == 4 * 140

    # what went over the wire: function schemas, tool results, the model name; the key only as a header
    requests = chat.requests
    assert requests[0]["tool_choice"] == {"type": "function", "function": {"name": "RequestSpec"}}
    names = {t["function"]["name"] for t in requests[1]["tools"]}
    assert {"query_assets", "get_golden_image", "generate_patch_plan"} <= names and "list_dr_pairs" not in names
    results = [json.loads(m["content"]) for m in tool_messages(requests[2])]
    assert {r["tool"] for r in results} == {"query_assets", "get_golden_image"}
    assert requests[3]["tool_choice"]["function"]["name"] == "PlanProposal"
    for request in requests:
        assert request["model"] == "scripted-model" and request["_authorization"] == f"Bearer {SECRET}"
        assert SECRET not in json.dumps(request["messages"])


def test_a_request_the_platform_cannot_serve_gets_an_answer(chat, ctx):
    chat.queue(Structured({"can_serve": False, "answer": "QL-RF cannot delete virtual machines; it only moves "
                                                         "assets to golden images through approved plans."}))
    outcome = ask("delete every stopped VM in staging", requested_by="bob", settings=settings(chat), tool_context=ctx)
    assert outcome.kind == "answer" and outcome.plans == [] and outcome.invocations == []
    assert "cannot delete" in outcome.answer and len(chat.requests) == 1


def test_a_question_is_answered_from_the_tools(chat, ctx, sample_runs):
    chat.queue(
        Structured({"can_serve": True, "intent": "investigate", "agent": "incident", "tools": ["list_sites"],
                    "risk": "low", "summary": "How many sites are there"}),
        ToolCalls([("list_sites", {})]),
        Say("done"),
        Structured({"outcome": "answer", "explanation": "The estate has 7 sites.", "risk": "low"}),
    )
    outcome = ask("how many sites do we have?", requested_by="bob", settings=settings(chat), tool_context=ctx)
    assert outcome.kind == "answer" and outcome.answer == "The estate has 7 sites." and not outcome.plans
    (call,) = outcome.invocations
    assert call.tool == "list_sites" and call.result_size == sql(sample_runs.home, "SELECT count(*) FROM sites")[0][0]


# ---------------------------------------------------------------- invalid plans

def test_an_invalid_plan_is_corrected_on_retry(chat, ctx, eu_web):
    wrong = Structured({"outcome": "plan", "explanation": "x", "risk": "medium",
                        "changes": [{"to_image_id": "ubuntu-22.04-base@9.9.9", "asset_ids": eu_web, "reason": "r"}]})
    chat.queue(patch_spec(), *gather_eu_web(), wrong, plan_for(eu_web))
    outcome = run(chat, ctx)
    assert outcome.error is None and len(outcome.plans) == 1
    retry = chat.requests[-1]
    feedback = json.dumps(retry["messages"][-2:])
    assert "ubuntu-22.04-base@9.9.9" in feedback and "was not returned by any tool call" in feedback


def test_an_invalid_plan_that_exhausts_retries_fails_cleanly(chat, ctx, eu_web):
    broken = Structured({"outcome": "plan", "explanation": "x", "changes": []})
    chat.queue(patch_spec(), *gather_eu_web(), broken, broken, broken)
    outcome = run(chat, ctx, max_retries=2)
    assert outcome.kind == "failed" and outcome.plans == []
    assert "did not return a valid PlanProposal after 3 attempt(s)" in outcome.error
    assert "changes is empty" in outcome.error
    assert len(outcome.invocations) == 2  # the tool calls made before are still reported


def test_assets_outside_the_estate_are_refused(chat, ctx, eu_web):
    ghost = "gcp:gcp-prod-euw1:0000000000000000000"
    outside = plan_for(eu_web + [ghost])
    chat.queue(patch_spec(), *gather_eu_web(), outside, outside, outside)
    outcome = run(chat, ctx, max_retries=2)
    assert outcome.kind == "failed" and outcome.plans == []
    assert ghost in outcome.error and "not returned by any tool call" in outcome.error


# ---------------------------------------------------------------- tools

def test_a_model_asking_for_an_unknown_tool_is_told_and_recorded(chat, ctx, eu_web):
    chat.queue(
        patch_spec(),
        ToolCalls([("terminate_instances", {"asset_ids": eu_web}), ("list_dr_pairs", {})]),
        *gather_eu_web(),
        plan_for(eu_web),
    )
    outcome = run(chat, ctx)
    assert outcome.error is None and len(outcome.plans) == 1
    refused = [i for i in outcome.invocations if i.error]
    assert [(i.tool, i.step) for i in refused] == [("terminate_instances", 2), ("list_dr_pairs", 2)]
    assert "does not exist" in refused[0].error and "is not one of your tools" in refused[1].error
    replies = [json.loads(m["content"]) for m in tool_messages(chat.requests[2])]
    assert "does not exist; your tools: query_assets" in replies[0]["error"]
    # the refused call's asset ids are not grounding: only tool results are
    assert outcome.grounded_asset_ids >= set(eu_web)


def test_tool_results_sent_to_the_model_are_bounded(chat, ctx, sample_runs):
    chat.queue(
        Structured({"can_serve": True, "intent": "investigate", "agent": "incident", "tools": ["query_assets"],
                    "risk": "low", "summary": "list everything"}),
        ToolCalls([("query_assets", {})]),
        Say("done"),
        Structured({"outcome": "answer", "explanation": "many", "risk": "low"}),
    )
    outcome = ask("list every asset", requested_by="bob", settings=settings(chat, max_tool_result_chars=3000),
                  tool_context=ctx)
    assert outcome.kind == "answer"
    (message,) = tool_messages(chat.requests[2])
    sent = json.loads(message["content"])
    total = sql(sample_runs.home, "SELECT count(*) FROM assets")[0][0]
    assert len(message["content"]) <= 3000 and sent["truncated"]
    assert f"of {total} rows" in sent["note"] and 0 < len(sent["rows"]) < 200
    assert outcome.invocations[0].truncated and outcome.invocations[0].result_size == total


def test_the_step_cap_ends_tool_rounds_and_asks_for_the_answer(chat, ctx, eu_web):
    again = ToolCalls([("get_golden_image", {"family": FAMILY})])
    chat.queue(patch_spec(), *gather_eu_web()[:1], again, plan_for(eu_web))
    outcome = run(chat, ctx, max_steps=4)  # meta-prompt + two tool rounds, then the answer
    assert outcome.error is None and len(outcome.plans) == 1
    assert "Tool budget reached" in json.dumps(chat.requests[-1]["messages"])


def test_the_token_cap_stops_the_task(chat, ctx):
    chat.tokens_per_reply = 5000
    try:
        chat.queue(patch_spec(), ToolCalls([("get_golden_image", {"family": FAMILY})]))
        outcome = run(chat, ctx, max_tokens_per_task=9000)
    finally:
        chat.tokens_per_reply = 120
    assert outcome.kind == "failed" and "token budget exhausted" in outcome.error and "10040 tokens used" in outcome.error


# ---------------------------------------------------------------- the endpoint

def test_a_slow_endpoint_times_out_cleanly(chat, ctx):
    chat.queue(Slow(3.0, patch_spec()))
    outcome = run(chat, ctx, timeout_seconds=0.5)
    assert outcome.kind == "failed" and "did not answer within 0.5 s" in outcome.error


def test_a_failing_endpoint_fails_cleanly_mid_task(chat, ctx):
    chat.queue(patch_spec(), Fail(503, "model overloaded"))
    outcome = run(chat, ctx)
    assert outcome.kind == "failed" and "HTTP 503" in outcome.error and "model overloaded" in outcome.error


def test_an_unreachable_endpoint_fails_cleanly(ctx):
    outcome = ask(REQUEST, requested_by="bob", tool_context=ctx,
                  settings=LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", timeout_seconds=2))
    assert outcome.kind == "failed" and "127.0.0.1:9" in outcome.error


# ---------------------------------------------------------------- the drift agent

def test_the_drift_agent_plans_from_drift_items(chat, ctx, sample_runs):
    rows = sql(sample_runs.home, (
        "SELECT asset_id FROM drift_items WHERE status = 'open' AND drift_type = 'image_outdated' "
        "AND site_id = 'aws-prod-use1' AND family = ? AND asset_id IN (SELECT asset_id FROM assets WHERE state = 'running') "
        "ORDER BY asset_id"
    ), [FAMILY])
    behind = [r[0] for r in rows][:3]
    assert len(behind) == 3
    chat.queue(
        ToolCalls([("drift_items", {"site_id": "aws-prod-use1", "drift_type": "image"}), ("get_golden_image", {"family": FAMILY})]),
        Say("ok"),
        plan_for(behind),
    )
    outcome = plan_drift("0" * 64, requested_by="sensor:drift_sensor", tool_context=ctx,
                         settings=settings(chat, max_tool_result_chars=500_000))  # the whole site's drift
    assert outcome.error is None and outcome.spec.agent == "drift" and len(chat.requests) == 3
    (plan,) = outcome.plans
    assert plan.task.agent == "drift" and plan.task.requested_by == "sensor:drift_sensor"
    assert plan.evidence.drift_item_ids and sorted(t.asset_id for t in plan.targets) == sorted(behind)
