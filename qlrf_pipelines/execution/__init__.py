"""Execution: phased rollout (canary, waves), health checks, rollback, per-provider actions.

No Dagster and no control store here; the execute job wires the engine to them through the
ActionBackend, HealthChecker and ActionJournal protocols and the on_event callback.
"""

from qlrf_pipelines.execution.actions import (
    CATALOGUE,
    ActionSpec,
    PlannedAction,
    UnsupportedAction,
    permissions_for,
    planned_action,
)
from qlrf_pipelines.execution.backends import (
    ActionBackend,
    ActionResult,
    DryRunBackend,
    ExecutionUnavailable,
    backend_for,
)
from qlrf_pipelines.execution.engine import ExecutionOutcome, PhaseOutcome, execute_plan, run_phase, run_rollback
from qlrf_pipelines.execution.health import HealthChecker, HealthResult, LakeHealthChecker
from qlrf_pipelines.execution.journal import ActionJournal, InMemoryJournal
from qlrf_pipelines.execution.lake_view import action_hints

__all__ = [
    "CATALOGUE",
    "ActionBackend",
    "ActionJournal",
    "ActionResult",
    "ActionSpec",
    "DryRunBackend",
    "ExecutionOutcome",
    "ExecutionUnavailable",
    "HealthChecker",
    "HealthResult",
    "InMemoryJournal",
    "LakeHealthChecker",
    "PhaseOutcome",
    "PlannedAction",
    "UnsupportedAction",
    "action_hints",
    "backend_for",
    "execute_plan",
    "permissions_for",
    "planned_action",
    "run_phase",
    "run_rollback",
]
