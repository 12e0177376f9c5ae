"""Backends apply planned actions. Only the dry run exists so far: it records the exact call it
would make and changes nothing. Real provider backends arrive later; until then asking for real
execution raises ExecutionUnavailable instead of pretending a change happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from qlrf_pipelines.execution.actions import PlannedAction

ActionStatus = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class ActionResult:
    status: ActionStatus
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class ActionBackend(Protocol):
    dry_run: bool

    def apply(self, action: PlannedAction) -> ActionResult: ...


class ExecutionUnavailable(NotImplementedError):
    """Real execution was asked for but no real backend exists for the provider yet."""


class DryRunBackend:
    """Records what would be called; never touches a provider."""

    dry_run = True

    def __init__(self) -> None:
        self.calls: list[PlannedAction] = []

    def apply(self, action: PlannedAction) -> ActionResult:
        self.calls.append(action)
        details: dict = {"dry_run": True, "call": action.call, "permissions": list(action.permissions)}
        if action.unresolved:
            details["unresolved"] = list(action.unresolved)
        return ActionResult("done", details)


def backend_for(site: object, dry_run_requested: bool) -> ActionBackend:
    """The dry run unless the site allows real execution (`execution_enabled`) and no dry run was
    asked for; real execution is not available yet and raises ExecutionUnavailable."""
    if dry_run_requested or not bool(getattr(site, "execution_enabled", False)):
        return DryRunBackend()
    provider = getattr(site, "provider", "?")
    raise ExecutionUnavailable(f"real execution for provider {provider} is not available yet")
