"""The outcome of checking a plan against one rule; stored with the task, with the policy version."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Stage = Literal["schema", "policy", "safety"]


@dataclass(frozen=True)
class Verdict:
    stage: Stage
    rule: str  # e.g. "remediation.production_needs_canary"
    allowed: bool
    message: str
    policy_version: str  # sha256 prefix of the policy bundle (or "builtin" for schema/safety)

    def to_dict(self) -> dict:
        return asdict(self)


def all_allowed(verdicts: list[Verdict]) -> bool:
    return all(v.allowed for v in verdicts)
