"""Read-only views of tasks, plan versions and decisions, as the CLI and the jobs see them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from qlrf_pipelines.planning.plan import Plan, parse_plan
from qlrf_pipelines.policy.verdicts import Verdict


@dataclass(frozen=True)
class ApprovalView:
    """One decision on one plan version. An approval binds the exact plan (hash) and the lake
    snapshots it was planned from (snapshot_key), and expires."""

    approval_id: int
    task_id: str
    plan_version: int
    plan_hash: str
    snapshot_key: str
    decision: str  # approved | rejected
    decided_by: str
    reason: str
    decided_at: datetime
    expires_at: datetime | None
    revoked: bool
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    def active(self, now: datetime) -> bool:
        """An approval that still authorises execution of its plan version (at `now`)."""
        return (
            self.decision == "approved"
            and not self.revoked
            and (self.expires_at is None or now < self.expires_at)
        )


@dataclass(frozen=True)
class PlanVersionView:
    task_id: str
    version: int
    plan_json: str
    plan_hash: str
    snapshot_key: str
    created_by: str
    created_at: datetime
    verdicts: list[Verdict]
    policy_version: str
    valid: bool

    def plan(self) -> Plan:
        return parse_plan(self.plan_json)


@dataclass(frozen=True)
class TaskView:
    """A task with its current plan version and every decision taken on it (oldest first)."""

    task_id: str
    title: str
    status: str
    requested_by: str
    created_at: datetime
    updated_at: datetime
    site_id: str
    environment: str
    family: str
    risk: str
    dedupe_key: str | None
    source_run_id: str | None
    run_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    plan_version: int
    plan_json: str
    plan_hash: str
    plan_created_by: str
    plan_created_at: datetime
    snapshot_key: str
    verdicts: list[Verdict]
    policy_version: str
    plan_valid: bool
    approvals: list[ApprovalView] = field(default_factory=list)

    def plan(self) -> Plan:
        """The current plan version, parsed (raises ValueError if the stored JSON is damaged)."""
        return parse_plan(self.plan_json)

    @property
    def denied_verdicts(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.allowed]

    def current_approval(self) -> ApprovalView | None:
        """The latest unrevoked approval of the current plan version (expired or not)."""
        candidates = [
            a
            for a in self.approvals
            if a.decision == "approved" and not a.revoked and a.plan_version == self.plan_version
        ]
        return candidates[-1] if candidates else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary for the CLI (--json) and run metadata; the plan stays as JSON text."""
        data = asdict(self)
        for key, value in list(data.items()):
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        data["approvals"] = [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(a).items()}
            for a in self.approvals
        ]
        return data


def verdicts_from_json(text: str) -> list[Verdict]:
    return [Verdict(**item) for item in json.loads(text)]
