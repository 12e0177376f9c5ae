"""The phased rollout: canary, then waves; health checks after each phase; rollback on failure.

No Dagster and no control store here: the engine works through four small seams (an action
backend, a health checker, an action journal and an `on_event` callback) so the execute job can
wire it to the control store and the audit log, and tests can run it on a temporary lake.

Rules:
* The plan must hash to the approved plan_hash: an approval binds to exactly one plan.
* Every applied action is journaled; an action already in the journal is skipped, so running a
  phase (or the whole plan) again changes nothing (a retried run resumes where it stopped).
* A phase stops at its first failed action (nothing more is changed), else runs every health
  check of the phase. The first failed phase stops the rollout and starts the rollback.
* Rollback restores the original image of every asset that a replace was attempted on, in the
  failed and earlier phases, newest first; it keeps going past a failed restore.
* A task that was rolled back is not rolled forward again by a re-run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Mapping

from qlrf_pipelines.execution.actions import UnsupportedAction, planned_action
from qlrf_pipelines.execution.backends import ActionBackend, ActionResult
from qlrf_pipelines.execution.health import HealthChecker, HealthResult
from qlrf_pipelines.execution.journal import ActionJournal
from qlrf_pipelines.planning.plan import Phase, Plan

EventCallback = Callable[[str, dict], None]
Hints = Mapping[str, Mapping[str, str]]  # asset_id -> coordinates (see lake_view.action_hints)
ExecutionStatus = Literal["succeeded", "failed", "rolled_back"]


@dataclass
class PhaseOutcome:
    phase: str
    passed: bool
    actions: list[dict] = field(default_factory=list)  # actions applied in this run
    health: list[HealthResult] = field(default_factory=list)
    skipped_already_done: int = 0
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExecutionOutcome:
    status: ExecutionStatus
    phases: list[PhaseOutcome] = field(default_factory=list)
    rollback_actions: list[dict] = field(default_factory=list)
    dry_run: bool = True
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _apply(
    plan: Plan,
    plan_hash: str,
    task_id: str,
    phase: str,
    asset_id: str,
    action: str,
    backend: ActionBackend,
    journal: ActionJournal,
    dry_run: bool,
    hints: Hints | None,
) -> dict:
    """Plan, apply and journal one action; never raises for an action that cannot be made."""
    target = plan.target(asset_id)
    entry: dict = {"phase": phase, "asset_id": asset_id, "action": action, "provider": target.provider, "dry_run": dry_run}
    try:
        planned = planned_action(target, action, (hints or {}).get(asset_id))
    except UnsupportedAction as exc:
        result = ActionResult("failed", {"error": str(exc)})
        entry.update(call=None, permissions=[], from_ref=None, to_ref=None)
    else:
        entry.update(call=planned.call, permissions=planned.permissions, from_ref=planned.from_ref, to_ref=planned.to_ref)
        try:
            result = backend.apply(planned)
        except Exception as exc:  # a provider error is a failed action, journaled and rolled back
            result = ActionResult("failed", {"error": f"{type(exc).__name__}: {exc}"})
    entry.update(status=result.status, details=dict(result.details))
    if not journal.record(task_id, plan_hash, phase, asset_id, action, dry_run, result.status, entry["details"]):
        entry["details"]["journal"] = "already recorded by a concurrent run"
    return entry


def run_phase(
    plan: Plan,
    plan_hash: str,
    task_id: str,
    phase: Phase,
    backend: ActionBackend,
    health_checker: HealthChecker,
    journal: ActionJournal,
    dry_run: bool,
    hints: Hints | None = None,
) -> PhaseOutcome:
    """replace_image on every asset of the phase not yet journaled, then the phase's health checks."""
    outcome = PhaseOutcome(phase=phase.name, passed=True)
    done = journal.recorded(task_id, plan_hash, dry_run=dry_run)
    for asset_id in phase.asset_ids:
        if (phase.name, asset_id, "replace_image") in done:
            outcome.skipped_already_done += 1
            continue
        entry = _apply(plan, plan_hash, task_id, phase.name, asset_id, "replace_image", backend, journal, dry_run, hints)
        outcome.actions.append(entry)
        if entry["status"] == "failed":
            outcome.passed = False
            outcome.reason = f"replace_image failed on {asset_id}: {entry['details'].get('error', entry['details'])}"
            return outcome
    for check in phase.health_checks:
        result = health_checker.check(plan, phase, check)
        outcome.health.append(result)
    failed = [r for r in outcome.health if not r.passed]
    if failed:
        outcome.passed = False
        outcome.reason = "health check failed: " + "; ".join(r.details for r in failed)
    return outcome


def run_rollback(
    plan: Plan,
    plan_hash: str,
    task_id: str,
    phases_done: list[Phase],
    backend: ActionBackend,
    journal: ActionJournal,
    dry_run: bool,
    hints: Hints | None = None,
) -> list[dict]:
    """restore_image, newest first, for every asset of `phases_done` a replace was attempted on
    (per the journal) and not yet restored. Returns the restore actions applied in this call."""
    done = journal.recorded(task_id, plan_hash, dry_run=dry_run)
    actions: list[dict] = []
    for phase in reversed(phases_done):
        for asset_id in reversed(phase.asset_ids):
            if (phase.name, asset_id, "replace_image") not in done:
                continue  # never touched: nothing to restore
            if (phase.name, asset_id, "restore_image") in done:
                continue
            actions.append(
                _apply(plan, plan_hash, task_id, phase.name, asset_id, "restore_image", backend, journal, dry_run, hints)
            )
    return actions


def execute_plan(
    plan: Plan,
    plan_hash: str,
    task_id: str,
    backend: ActionBackend,
    health_checker: HealthChecker,
    journal: ActionJournal,
    dry_run: bool = True,
    on_event: EventCallback | None = None,
    hints: Hints | None = None,
) -> ExecutionOutcome:
    """Run the plan's phases in order; at the first failed phase roll back and stop.

    Status: succeeded (every phase passed), rolled_back (a phase failed and every restore
    worked), failed (a restore failed too: the estate needs a person).
    """
    if plan.plan_hash() != plan_hash:
        raise ValueError("the plan does not match the approved plan hash; refusing to execute it")
    for name, component in (("backend", backend), ("health checker", health_checker)):
        mode = getattr(component, "dry_run", None)
        if mode is not None and bool(mode) != bool(dry_run):
            raise ValueError(f"the {name} runs with dry_run={mode} but execution asked for dry_run={dry_run}")

    def emit(event: str, **payload: object) -> None:
        if on_event is not None:
            on_event(event, {"task_id": task_id, "plan_hash": plan_hash, "dry_run": dry_run, **payload})

    outcome = ExecutionOutcome(status="succeeded", dry_run=dry_run)
    if any(action == "restore_image" for _, _, action in journal.recorded(task_id, plan_hash, dry_run=dry_run)):
        outcome.status = "rolled_back"
        outcome.reason = "this task was already rolled back; nothing was run again"
        return outcome

    phases_done: list[Phase] = []
    for phase in plan.phases:
        emit("phase_started", phase=phase.name, phase_kind=phase.kind, asset_ids=list(phase.asset_ids))
        result = run_phase(plan, plan_hash, task_id, phase, backend, health_checker, journal, dry_run, hints)
        outcome.phases.append(result)
        phases_done.append(phase)
        emit(
            "phase_done",
            phase=phase.name,
            passed=result.passed,
            actions=len(result.actions),
            failed_actions=sum(a["status"] == "failed" for a in result.actions),
            skipped_already_done=result.skipped_already_done,
            health=[h.to_dict() for h in result.health],
            reason=result.reason,
        )
        if result.passed:
            continue
        outcome.reason = f"phase {phase.name} failed: {result.reason}"
        emit("rollback_started", failed_phase=phase.name, phases=[p.name for p in phases_done], reason=result.reason)
        outcome.rollback_actions = run_rollback(plan, plan_hash, task_id, phases_done, backend, journal, dry_run, hints)
        failed_restores = [a["asset_id"] for a in outcome.rollback_actions if a["status"] == "failed"]
        outcome.status = "failed" if failed_restores else "rolled_back"
        if failed_restores:
            outcome.reason += f"; rollback failed for {', '.join(failed_restores)}"
        emit(
            "rollback_done",
            status=outcome.status,
            actions=len(outcome.rollback_actions),
            failed_assets=failed_restores,
        )
        return outcome
    return outcome
