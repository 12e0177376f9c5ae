"""From a natural-language request (or from drift) to plans: meta-prompt, agent, proposal, plans.

1. The meta-prompt turns the request into a `RequestSpec` (intent, agent, tools, risk, targets),
   or into an answer when the platform cannot serve it.
2. The chosen agent gathers facts with its read-only tools (function calling, bounded).
3. The agent returns a `PlanProposal`, validated against what its tools returned.
4. The proposal becomes plans built from warehouse facts (`materialize`). The caller validates
   them (schema, Rego, safety) and stores them as tasks pending approval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.llm.materialize import ProposalRefused, load_plan_facts, plans_from_proposal
from qlrf_pipelines.planning.llm.prompts import agent_prompt, meta_prompt
from qlrf_pipelines.planning.llm.schemas import PlanProposal, RequestSpec, TargetSelector
from qlrf_pipelines.planning.llm.session import Invocation, ModelSession, PlannerError
from qlrf_pipelines.planning.llm.settings import LLMSettings
from qlrf_pipelines.planning.plan import Plan
from qlrf_pipelines.planning.tools.registry import ToolContext, tools_for_agent
from qlrf_pipelines.warehouse import WarehouseError

EVIDENCE_QUERY_CHARS = 4000


@dataclass
class AskOutcome:
    request: str
    spec: RequestSpec | None = None
    proposal: PlanProposal | None = None
    plans: list[Plan] = field(default_factory=list)
    answer: str | None = None
    error: str | None = None
    invocations: list[Invocation] = field(default_factory=list)
    grounded_asset_ids: set[str] = field(default_factory=set)
    steps: int = 0
    tokens: int = 0

    @property
    def kind(self) -> str:
        """plans, answer (a question answered, nothing to change, or a request it cannot serve), failed."""
        if self.error:
            return "failed"
        return "plans" if self.plans else "answer"

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "agent": self.spec.agent if self.spec else None,
            "intent": self.spec.intent if self.spec else None,
            "risk": self.spec.risk if self.spec else None,
            "answer": self.answer,
            "error": self.error,
            "plans": len(self.plans),
            "tool_calls": len(self.invocations),
            "model_steps": self.steps,
            "tokens": self.tokens,
        }


def ask(
    request: str,
    *,
    requested_by: str,
    settings: LLMSettings,
    tool_context: ToolContext,
    limits: PlanningLimits | None = None,
    spec: RequestSpec | None = None,
) -> AskOutcome:
    """Serve one request end to end; never raises for the model's failures (see `error`)."""
    request = request.strip()
    outcome = AskOutcome(request=request)
    if not request:
        outcome.error = "the request is empty"
        return outcome
    session = ModelSession(settings, tool_context)
    try:
        outcome.spec = spec or session.answer(
            [{"role": "system", "content": meta_prompt()}, {"role": "user", "content": request}], RequestSpec
        )
        if not outcome.spec.can_serve:
            outcome.answer = outcome.spec.answer
            return outcome
        _run_agent(session, outcome, requested_by, limits)
    except (PlannerError, ProposalRefused) as exc:
        prefix = "refused: " if isinstance(exc, ProposalRefused) else ""
        outcome.error = prefix + str(exc)
    except WarehouseError as exc:
        outcome.error = f"the warehouse could not be read: {exc}"
    finally:
        outcome.invocations = list(session.invocations)
        outcome.grounded_asset_ids = set(session.grounding.asset_ids)
        outcome.steps, outcome.tokens = session.steps, session.tokens
    return outcome


def _run_agent(session: ModelSession, outcome: AskOutcome, requested_by: str, limits: PlanningLimits | None) -> None:
    spec = outcome.spec
    assert spec is not None and spec.agent is not None
    brief = spec.model_dump(mode="json", exclude={"answer", "can_serve"})
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": agent_prompt(spec.agent, spec.intent)},
        {"role": "user", "content": f"Request: {outcome.request}\n\nTask spec: {json.dumps(brief)}"},
    ]
    session.gather(messages, tools_for_agent(spec.agent))
    messages.append({"role": "user", "content": "Give your proposal now."})
    proposal = session.answer(messages, PlanProposal, context=session.grounding.context())
    outcome.proposal = proposal
    if proposal.outcome != "plan":
        outcome.answer = proposal.explanation
        return
    used = [i for i in session.invocations if i.error is None]
    facts = load_plan_facts(
        session.tool_context.warehouse_path,
        [a for c in proposal.changes for a in c.asset_ids],
        [c.to_image_id for c in proposal.changes],
    )
    outcome.plans = plans_from_proposal(
        proposal, facts, agent=spec.agent, intent=spec.summary or proposal.explanation,
        tools_used=list(dict.fromkeys(i.tool for i in used)), requested_by=requested_by,
        evidence_query=_evidence_query(spec.agent, used), limits=limits,
    )
    outcome.answer = proposal.explanation


def _evidence_query(agent: str, invocations: list[Invocation]) -> str:
    """What the plan was made from, for the approver: the agent's tool calls in order."""
    calls = "; ".join(f"{i.tool}({json.dumps(i.arguments, sort_keys=True, default=str)})" for i in invocations)
    text = f"LLM agent {agent}, tool calls: {calls or 'none'}"
    return text if len(text) <= EVIDENCE_QUERY_CHARS else text[: EVIDENCE_QUERY_CHARS - 3] + "..."


DRIFT_REQUEST = (
    "Remediate the open image drift of the latest inventory snapshots (snapshot key {key}): find running assets "
    "on an outdated, deprecated or revoked golden image (drift_items) and move them to their family's current "
    "golden image (get_golden_image), canary first in production. Leave out assets with no published target."
)


def drift_spec(snapshot_key: str) -> RequestSpec:
    """The task spec of a sensor-started drift remediation (no meta-prompt: the intent is known)."""
    return RequestSpec(
        can_serve=True, intent="remediate_drift", agent="drift",
        tools=["drift_items", "get_golden_image", "query_assets"], risk="medium",
        targets=TargetSelector(description="every asset with open image drift"), canary_first=True,
        summary=f"Remediate open image drift (snapshot key {snapshot_key[:12]})",
    )


def plan_drift(
    snapshot_key: str, *, requested_by: str, settings: LLMSettings, tool_context: ToolContext,
    limits: PlanningLimits | None = None,
) -> AskOutcome:
    """The drift agent's plans for what the drift / compliance sensors found."""
    return ask(
        DRIFT_REQUEST.format(key=snapshot_key[:12]), requested_by=requested_by, settings=settings,
        tool_context=tool_context, limits=limits, spec=drift_spec(snapshot_key),
    )


__all__ = ["AskOutcome", "PlannerError", "ask", "drift_spec", "plan_drift"]
