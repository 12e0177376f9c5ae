"""What the model must return: a task spec for a request, then a plan proposal.

Both are pydantic models, so instructor rejects a malformed answer and re-asks with the
validation error. The proposal's validators also check it against what the tools returned
(`validation context`): a model cannot name an asset or image it never saw.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from qlrf_pipelines.planning.plan import RiskLevel
from qlrf_pipelines.planning.tools.registry import AGENTS, REGISTRY

Intent = Literal[
    "patch", "remediate_drift", "remediate_compliance", "rollback",
    "dr_readiness", "investigate", "cost_review", "security_review",
]
# Intents whose outcome can be a plan (an image move); the others end in an answer.
PLANNING_INTENTS = ("patch", "remediate_drift", "remediate_compliance", "rollback")
_SHOWN = 8


def _ids(values: list[str]) -> str:
    shown = ", ".join(values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetSelector(_Model):
    description: str = Field(description="The targets in the user's words, e.g. 'production web servers in eu-west'.")
    site_ids: list[str] = Field(default_factory=list, description="Site ids named or implied (see list_sites).")
    regions: list[str] = Field(default_factory=list, description="Regions or region prefixes, e.g. eu-west.")
    environments: list[str] = Field(default_factory=list, description="Environments, e.g. production.")
    providers: list[str] = Field(default_factory=list, description="aws, azure, gcp, vsphere or kubernetes.")
    families: list[str] = Field(default_factory=list, description="Golden image families, e.g. ubuntu-22.04-base.")
    name_globs: list[str] = Field(default_factory=list, description="Asset name globs, e.g. web-*.")
    asset_ids: list[str] = Field(default_factory=list, description="Asset ids the user named.")


class RequestSpec(_Model):
    """The meta-prompt's output: what the request asks and who handles it."""

    can_serve: bool = Field(description="False when the platform cannot do what is asked (then explain in answer).")
    answer: str | None = Field(None, description="When can_serve is false: a clear answer saying why and what is possible.")
    intent: Intent | None = Field(None, description="What the user wants done.")
    agent: str | None = Field(None, description="The specialist agent: " + ", ".join(AGENTS))
    tools: list[str] = Field(default_factory=list, description="The agent's tools it will likely need.")
    risk: RiskLevel = Field("medium", description="Risk of the change: low, medium, high or critical.")
    targets: TargetSelector | None = Field(None, description="What the request is about.")
    canary_first: bool = Field(True, description="Whether the change starts with a canary phase.")
    summary: str = Field("", description="The task in one sentence.")

    @field_validator("agent")
    @classmethod
    def _known_agent(cls, value: str | None) -> str | None:
        if value is not None and value not in AGENTS:
            raise ValueError(f"unknown agent {value!r}; agents: {', '.join(AGENTS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "RequestSpec":
        if not self.can_serve:
            if not (self.answer or "").strip():
                raise ValueError("can_serve is false: give the user an answer saying why")
            return self
        if self.intent is None or self.agent is None:
            raise ValueError("can_serve is true: intent and agent are required")
        unknown = [t for t in self.tools if t not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown tools {_ids(unknown)}; known tools: {', '.join(REGISTRY)}")
        foreign = [t for t in self.tools if self.agent not in REGISTRY[t].agents]
        if foreign:
            own = [t.name for t in REGISTRY.values() if self.agent in t.agents]
            raise ValueError(f"tools {_ids(foreign)} are not tools of agent {self.agent!r}; its tools: {', '.join(own)}")
        return self


class ProposedChange(_Model):
    to_image_id: str = Field(description="The golden image to move to, as family@version (from a tool result).")
    asset_ids: list[str] = Field(min_length=1, description="Assets to move, exactly as tools returned their asset_id.")
    canary_asset_ids: list[str] = Field(
        default_factory=list, description="Which of asset_ids go first in production (the policy sets how many)."
    )
    reason: str = Field(description="Why these assets move to this image.")


Outcome = Literal["plan", "no_change", "answer", "cannot_serve"]


class PlanProposal(_Model):
    """The agent's output: a change for people to approve, or an answer."""

    outcome: Outcome = Field(description="plan (changes follow), no_change (nothing to do), answer (a question "
                                         "answered from the tools), cannot_serve (not possible; say why).")
    explanation: str = Field(description="For the approver or the user: what and why, citing the tool results.")
    risk: RiskLevel = Field("medium", description="Risk of the change.")
    changes: list[ProposedChange] = Field(default_factory=list, description="Only for outcome plan.")

    @model_validator(mode="after")
    def _grounded(self, info: ValidationInfo) -> "PlanProposal":
        if self.outcome == "plan" and not self.changes:
            raise ValueError("outcome is plan but changes is empty")
        if self.outcome != "plan" and self.changes:
            raise ValueError(f"outcome is {self.outcome} but changes were given; use outcome plan")
        context: dict[str, Any] = info.context or {}
        seen_assets: set[str] = set(context.get("seen_asset_ids") or ())
        seen_images: set[str] = set(context.get("seen_image_ids") or ())
        running: dict[str, str] = dict(context.get("asset_images") or {})
        problems: list[str] = []
        listed: list[str] = []
        for change in self.changes:
            listed += change.asset_ids
            unseen = [a for a in change.asset_ids if a not in seen_assets]
            if unseen:
                problems.append(
                    f"asset(s) {_ids(unseen)} were not returned by any tool call: only target assets you found "
                    "with the tools (e.g. query_assets, drift_items)"
                )
            if change.to_image_id not in seen_images:
                problems.append(
                    f"image {change.to_image_id!r} was not returned by any tool call: look it up "
                    "(get_golden_image gives a family's current image)"
                )
            stray = [a for a in change.canary_asset_ids if a not in change.asset_ids]
            if stray:
                problems.append(f"canary asset(s) {_ids(stray)} are not among the change's asset_ids")
            already = [a for a in change.asset_ids if running.get(a) == change.to_image_id]
            if already:
                problems.append(f"asset(s) {_ids(already)} already run {change.to_image_id}: leave them out")
        twice = sorted({a for a in listed if listed.count(a) > 1})
        if twice:
            problems.append(f"asset(s) {_ids(twice)} appear in more than one change")
        if problems:
            raise ValueError("; ".join(problems))
        return self
