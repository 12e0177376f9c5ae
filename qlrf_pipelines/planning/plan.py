"""The remediation plan: what a planner proposes and a person approves.

A plan is data, never code: typed here, checked by Rego policies and safety checks, stored as
canonical JSON and identified by its SHA-256 hash, so an approval binds to exactly one plan.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PLAN_SCHEMA_VERSION = 1
RiskLevel = Literal["low", "medium", "high", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    intent: str = Field(description="What the change achieves, in one sentence")
    agent: str = Field(description="Who planned it: 'rule_based' or a specialist agent name")
    tools_used: list[str] = Field(default_factory=list)
    risk: RiskLevel
    requested_by: str = Field(description="sensor name, 'system' or a user")


class TargetAsset(_Strict):
    asset_id: str
    site_id: str
    provider: str
    name: str
    environment: str
    from_image_ref: str | None = Field(description="the provider image the asset runs now")
    from_image_id: str | None = Field(description="its golden image (family@version), if known")
    to_image_ref: str | None = Field(description="the provider image to move to (None if not published here)")
    to_image_id: str


class HealthCheck(_Strict):
    kind: Literal["asset_running", "image_matches_target"]
    description: str
    max_failed_share: float = Field(0.0, ge=0, le=1, description="share of the phase's assets allowed to fail")


class Phase(_Strict):
    name: str = Field(description="canary, wave-1, wave-2, ...")
    kind: Literal["canary", "wave"]
    asset_ids: list[str]
    health_checks: list[HealthCheck]

    @property
    def batch_size(self) -> int:
        return len(self.asset_ids)


class RollbackStep(_Strict):
    action: Literal["restore_image"]
    description: str


class Rollback(_Strict):
    criteria: list[str] = Field(description="when to roll back, e.g. any failed health check")
    steps: list[RollbackStep]


class Evidence(_Strict):
    drift_item_ids: list[str]
    snapshot_key: str = Field(description="digest of the lake snapshots the plan was made from")
    snapshot_ids: dict[str, str] = Field(description="site_id -> snapshot_id")
    query: str = Field(description="the warehouse query that selected the drift items")


class Plan(_Strict):
    schema_version: int = PLAN_SCHEMA_VERSION
    task: TaskSpec
    site_id: str
    environment: str
    family: str
    to_image_id: str
    change: str = Field(description="human summary: move N assets from X to Y")
    fleet_size: int = Field(ge=0, description="assets at the site when planned (for share limits)")
    targets: list[TargetAsset]
    phases: list[Phase]
    rollback: Rollback
    evidence: Evidence

    @model_validator(mode="after")
    def _phases_cover_targets(self) -> "Plan":
        target_ids = [t.asset_id for t in self.targets]
        phased = [a for p in self.phases for a in p.asset_ids]
        if sorted(phased) != sorted(target_ids):
            raise ValueError("phases must cover every target asset exactly once")
        if len(set(target_ids)) != len(target_ids):
            raise ValueError("a target asset is listed twice")
        return self

    def canonical_json(self) -> str:
        return self._canonical

    def plan_hash(self) -> str:
        return self._hash

    # A plan is frozen, so its bytes and hash are computed once: validation compares every plan of
    # a planning run with every other one, which re-serialised large plans quadratically.
    @cached_property
    def _canonical(self) -> str:
        return canonical_json(self.model_dump(mode="json"))

    @cached_property
    def _hash(self) -> str:
        return plan_hash_of(self._canonical)

    def target(self, asset_id: str) -> TargetAsset:
        return self._targets_by_id[asset_id]

    @cached_property
    def _targets_by_id(self) -> dict[str, TargetAsset]:
        return {t.asset_id: t for t in self.targets}


def canonical_json(data: object) -> str:
    """Sorted keys, no whitespace, UTF-8: the same plan always serialises to the same bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash_of(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_plan(text: str) -> Plan:
    """A plan from JSON text (a file a user edited, or the control store); raises ValueError."""
    return Plan.model_validate_json(text)
