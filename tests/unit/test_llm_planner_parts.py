"""The LLM planner's pure parts: schemas and their grounding checks, result bounding, plan
materialization from warehouse facts, settings that never show the key."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.llm.materialize import PlanFacts, ProposalRefused, plans_from_proposal
from qlrf_pipelines.planning.llm.schemas import PlanProposal, ProposedChange, RequestSpec
from qlrf_pipelines.planning.llm.session import Grounding, bounded_json
from qlrf_pipelines.planning.llm.settings import LLMNotConfigured, LLMSettings
from qlrf_pipelines.policy.validate import validate_plan


# ---------------------------------------------------------------- request spec

def spec(**overrides):
    data = {"can_serve": True, "intent": "patch", "agent": "patch", "tools": ["query_assets", "get_golden_image"],
            "risk": "medium", "summary": "patch web servers"}
    return RequestSpec.model_validate(data | overrides)


def test_request_spec_accepts_a_routed_request():
    assert spec().agent == "patch"


@pytest.mark.parametrize("overrides, message", [
    ({"agent": "janitor"}, "unknown agent 'janitor'"),
    ({"tools": ["delete_vm"]}, "unknown tools delete_vm"),
    ({"agent": "cost", "tools": ["cve_blast_radius"]}, "not tools of agent 'cost'"),
    ({"intent": None}, "intent and agent are required"),
    ({"can_serve": False, "answer": ""}, "give the user an answer"),
    ({"surprise": 1}, "Extra inputs are not permitted"),
])
def test_request_spec_rejects_what_the_platform_does_not_have(overrides, message):
    with pytest.raises(ValidationError, match=message):
        spec(**overrides)


def test_a_request_that_cannot_be_served_needs_only_the_answer():
    refused = RequestSpec.model_validate({"can_serve": False, "answer": "QL-RF cannot delete VMs."})
    assert refused.agent is None and refused.answer.startswith("QL-RF")


# ---------------------------------------------------------------- proposal grounding

CONTEXT = {
    "seen_asset_ids": {"a-1", "a-2", "a-3"},
    "seen_image_ids": {"fam@2", "fam@1"},
    "asset_images": {"a-1": "fam@1", "a-2": "fam@1", "a-3": "fam@2"},
}


def proposal(changes, outcome="plan", context=CONTEXT):
    return PlanProposal.model_validate(
        {"outcome": outcome, "explanation": "x", "risk": "medium", "changes": changes}, context=context
    )


def test_a_grounded_proposal_validates():
    made = proposal([{"to_image_id": "fam@2", "asset_ids": ["a-1", "a-2"], "canary_asset_ids": ["a-2"], "reason": "behind"}])
    assert made.changes[0].asset_ids == ["a-1", "a-2"]


@pytest.mark.parametrize("change, message", [
    ({"to_image_id": "fam@2", "asset_ids": ["a-9"], "reason": "r"}, "a-9 were not returned by any tool call"),
    ({"to_image_id": "fam@7", "asset_ids": ["a-1"], "reason": "r"}, "image 'fam@7' was not returned"),
    ({"to_image_id": "fam@2", "asset_ids": ["a-1"], "canary_asset_ids": ["a-2"], "reason": "r"}, "not among the change's asset_ids"),
    ({"to_image_id": "fam@2", "asset_ids": ["a-3"], "reason": "r"}, "a-3 already run fam@2"),
    ({"to_image_id": "fam@2", "asset_ids": [], "reason": "r"}, "at least 1 item"),
])
def test_an_ungrounded_proposal_is_rejected_with_a_reason_the_model_can_act_on(change, message):
    with pytest.raises(ValidationError, match=message):
        proposal([change])


def test_outcome_and_changes_must_agree():
    with pytest.raises(ValidationError, match="changes is empty"):
        proposal([])
    with pytest.raises(ValidationError, match="use outcome plan"):
        proposal([{"to_image_id": "fam@2", "asset_ids": ["a-1"], "reason": "r"}], outcome="answer")
    with pytest.raises(ValidationError, match="more than one change"):
        proposal([{"to_image_id": "fam@2", "asset_ids": ["a-1"], "reason": "r"},
                  {"to_image_id": "fam@2", "asset_ids": ["a-1"], "reason": "r"}])


def test_without_tool_results_nothing_is_grounded():
    with pytest.raises(ValidationError, match="not returned by any tool call"):
        proposal([{"to_image_id": "fam@2", "asset_ids": ["a-1"], "reason": "r"}], context=None)


def test_grounding_collects_ids_from_nested_results():
    grounding = Grounding()
    grounding.absorb([
        {"asset_id": "a-1", "image_id": "fam@1", "name": "web"},
        {"family": "fam", "current_image_id": "fam@2", "assets": [{"asset_id": "a-2"}], "asset_ids": ["a-3"]},
        {"image_id": "not-an-image-id"},
    ])
    assert grounding.asset_ids == {"a-1", "a-2", "a-3"}
    assert grounding.image_ids == {"fam@1", "fam@2"}
    assert grounding.asset_images == {"a-1": "fam@1"}


# ---------------------------------------------------------------- bounded tool results

def test_small_results_pass_unchanged():
    payload = {"tool": "t", "result_size": 2, "rows": [{"a": 1}, {"a": 2}]}
    text, sent, cut = bounded_json(payload, 1000)
    assert json.loads(text) == payload and sent == payload and not cut


def test_large_row_results_keep_whole_rows_and_say_what_was_cut():
    rows = [{"asset_id": f"asset-{i:04d}", "name": "x" * 40} for i in range(300)]
    text, sent, cut = bounded_json({"tool": "t", "result_size": 300, "rows": rows}, 2000)
    data = json.loads(text)
    assert cut and len(text) <= 2000
    kept = len(data["rows"])
    assert 0 < kept < 300 and data["rows"] == rows[:kept]
    assert data["truncated"] and f"showing {kept} of 300 rows" in data["note"]
    assert sent["rows"] == rows[:kept]


def test_large_object_results_leave_out_their_largest_values_and_keep_the_summaries():
    drafted = {"plans": [{"plan_hash": f"h{i}", "change": f"move {i} assets", "plan": {"targets": ["t" * 50] * 60}}
                         for i in range(3)], "unplanned": []}
    text, sent, cut = bounded_json({"tool": "generate_patch_plan", "result_size": 1, "rows": drafted}, 3000)
    data = json.loads(text)
    assert cut and len(text) <= 3000 and data == sent
    assert [p["change"] for p in data["rows"]["plans"]] == ["move 0 assets", "move 1 assets", "move 2 assets"]
    targets = [p["plan"]["targets"] for p in data["rows"]["plans"]]
    assert any(t[-1].endswith("more items left out>") for t in targets)
    assert all(t[:-1] == ["t" * 50] * (len(t) - 1) for t in targets if t[-1].startswith("<"))
    assert ".plan.targets" in data["note"] and "narrower arguments" in data["note"]


def test_a_long_text_keeps_its_beginning():
    runbook = "# Runbook\n" + "step\n" * 2000
    text, sent, cut = bounded_json({"tool": "generate_sop", "result_size": 1, "rows": {"title": "T", "markdown": runbook}}, 1500)
    data = json.loads(text)
    assert cut and len(text) <= 1500 and data["rows"]["title"] == "T"
    assert data["rows"]["markdown"].startswith("# Runbook\nstep\n") and "more characters cut]" in data["rows"]["markdown"]
    assert "markdown" in data["note"]


def test_what_cannot_be_cut_to_size_becomes_a_marked_preview():
    many = {f"k{i}": i for i in range(400)}  # only small values: nothing to cut
    text, sent, cut = bounded_json({"tool": "t", "rows": many}, 1000)
    data = json.loads(text)
    assert cut and data["truncated"] and "preview is incomplete" in data["note"] and len(text) <= 1100
    assert sent == {}


# ---------------------------------------------------------------- materialization

def facts() -> PlanFacts:
    assets = {}
    for i in range(1, 7):
        assets[f"a-{i}"] = {
            "asset_id": f"a-{i}", "site_id": "site-1", "provider": "aws", "name": f"web-{i:02d}",
            "environment": "production", "state": "running", "image_ref": "ami-old", "image_id": "fam@1",
            "image_family": "fam", "image_version": "1", "region": "eu-west-1",
        }
    return PlanFacts(
        assets=assets,
        images={"fam@2": {"image_id": "fam@2", "family": "fam", "version": "2", "status": "production"},
                "fam@0": {"image_id": "fam@0", "family": "fam", "version": "0", "status": "revoked"}},
        artifacts=[{"provider_image_id": "ami-new", "site_id": "site-1", "provider": "aws", "region": "eu-west-1",
                    "image_id": "fam@2"}],
        fleet_sizes={"site-1": 20},
        snapshot_ids={"site-1": "20261127T000000Z"},
        open_drift={"a-1": ["d-1"], "a-2": ["d-2"]},
    )


def materialize(changes, risk="low", limits=None):
    # model_construct: these tests are about the warehouse barrier behind the schema's grounding check
    made = PlanProposal.model_construct(
        outcome="plan", explanation="e", risk=risk,
        changes=[ProposedChange.model_construct(**({"canary_asset_ids": []} | c)) for c in changes],
    )
    return plans_from_proposal(
        made, facts(), agent="patch", intent="patch web", tools_used=["query_assets"], requested_by="bob",
        evidence_query="LLM agent patch, tool calls: query_assets({})", limits=limits or PlanningLimits(),
    )


def test_plans_come_from_warehouse_facts_with_the_models_canary_first():
    (plan,) = materialize([{"to_image_id": "fam@2", "asset_ids": ["a-1", "a-2", "a-3"], "canary_asset_ids": ["a-3"],
                            "reason": "r"}])
    assert plan.site_id == "site-1" and plan.family == "fam" and plan.to_image_id == "fam@2"
    assert plan.phases[0].kind == "canary" and plan.phases[0].asset_ids == ["a-3"]
    assert all(t.to_image_ref == "ami-new" and t.from_image_ref == "ami-old" for t in plan.targets)
    assert plan.task.agent == "patch" and plan.task.requested_by == "bob"
    assert plan.task.risk == "medium"  # production is never below medium, whatever the model says
    assert plan.evidence.drift_item_ids == ["d-1", "d-2"] and plan.evidence.snapshot_ids == {"site-1": "20261127T000000Z"}
    plan_, verdicts = validate_plan(plan, known_asset_ids={"a-1", "a-2", "a-3"})
    assert plan_ is not None and all(v.allowed for v in verdicts), [v for v in verdicts if not v.allowed]


def test_plans_over_the_fleet_share_cap_are_split():
    plans = materialize([{"to_image_id": "fam@2", "asset_ids": [f"a-{i}" for i in range(1, 7)], "reason": "r"}],
                        limits=PlanningLimits(max_plan_share_of_fleet=0.2))
    assert [len(p.targets) for p in plans] == [3, 3] and "(part 1 of 2)" in plans[0].change


def test_a_proposal_naming_assets_or_images_the_warehouse_lacks_is_refused():
    with pytest.raises(ProposalRefused, match="not in the estate: i-ghost"):
        materialize([{"to_image_id": "fam@2", "asset_ids": ["a-1", "i-ghost"], "reason": "r"}])
    with pytest.raises(ProposalRefused, match="fam@0 is revoked"):
        materialize([{"to_image_id": "fam@0", "asset_ids": ["a-1"], "reason": "r"}])
    with pytest.raises(ProposalRefused, match="fam@9 is not a golden image"):
        materialize([{"to_image_id": "fam@9", "asset_ids": ["a-1"], "reason": "r"}])


# ---------------------------------------------------------------- settings

def test_settings_never_show_the_key_and_need_an_endpoint(monkeypatch):
    made = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(made) and "sk-very-secret" not in str(made)
    for name in ("QLRF_LLM_BASE_URL", "QLRF_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LLMNotConfigured, match="QLRF_LLM_BASE_URL"):
        LLMSettings.from_env()
    with pytest.raises(ValueError, match="max_steps"):
        LLMSettings(base_url="http://x/v1", model="m", max_steps=0)
