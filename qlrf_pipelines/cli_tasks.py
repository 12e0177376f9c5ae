"""`qlrf tasks ...`, `qlrf audit ...` and `qlrf tick`: the person-in-the-loop side of remediation."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import click

from qlrf_pipelines import settings


@contextmanager
def _store():
    from qlrf_pipelines.control.store import ControlStore

    store = ControlStore.open(url=os.environ.get("QLRF_CONTROL_URL"), home=settings.qlrf_home())
    try:
        yield store
    finally:
        store.close()


def _rbac():
    from qlrf_pipelines.control.rbac import Rbac

    return Rbac.load(os.environ.get("QLRF_RBAC") or None)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _task_line(task) -> tuple:
    plan = task.plan()
    return (
        task.task_id, task.status, task.risk, task.site_id, plan.family, len(plan.targets), len(plan.phases),
        task.requested_by, task.plan_hash[:12], plan.change,
    )


def _describe(task) -> str:
    plan = task.plan()
    lines = [
        f"Task {task.task_id}: {task.title}",
        f"  status        {task.status}",
        f"  requested by  {task.requested_by} at {task.created_at:%Y-%m-%d %H:%M:%S}Z",
        f"  risk          {task.risk}",
        f"  site          {task.site_id} ({task.environment})",
        f"  change        {plan.change}",
        f"  plan          version {task.plan_version} by {task.plan_created_by}, hash {task.plan_hash}",
        f"  snapshot key  {task.snapshot_key}",
        f"  policy        version {task.policy_version}",
        "  verdicts:",
    ]
    lines += [f"    [{'allow' if v.allowed else 'DENY '}] {v.stage}:{v.rule}: {v.message}" for v in task.verdicts]
    lines.append("  phases:")
    for phase in plan.phases:
        names = ", ".join(plan.target(a).name for a in phase.asset_ids)
        checks = ", ".join(c.kind for c in phase.health_checks)
        lines.append(f"    {phase.name:<8} {phase.kind:<6} {len(phase.asset_ids):>3} assets  checks: {checks}")
        lines.append(f"             {names}")
    lines.append("  rollback:     " + "; ".join(plan.rollback.criteria) + " -> " + "; ".join(s.description for s in plan.rollback.steps))
    lines.append(f"  evidence:     {len(plan.evidence.drift_item_ids)} drift items, snapshots {plan.evidence.snapshot_ids}")
    for approval in task.approvals:
        state = "revoked" if approval.revoked else approval.decision
        expiry = f", expires {approval.expires_at:%Y-%m-%d %H:%M}Z" if approval.expires_at else ""
        lines.append(f"  {state:<9}     by {approval.decided_by} (plan v{approval.plan_version}){expiry}: {approval.reason}")
    return "\n".join(lines)


@click.group()
def tasks() -> None:
    """Remediation tasks: list, show, approve, reject, modify."""


@tasks.command("list")
@click.option("--status", help="Only tasks in this status (pending_approval, approved, succeeded, ...).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tasks_list(status: str | None, as_json: bool) -> None:
    """List tasks: assets, change, phases, risk, verdicts, requester and plan hash."""
    from tabulate import tabulate

    with _store() as store:
        found = store.list_tasks(status=status)
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in found], indent=2, default=str))
        return
    headers = ["task", "status", "risk", "site", "family", "assets", "phases", "requested_by", "plan_hash", "change"]
    click.echo(tabulate([_task_line(t) for t in found], headers=headers) if found else "no tasks")


@tasks.command("show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="The task with its whole plan as JSON.")
def tasks_show(task_id: str, as_json: bool) -> None:
    """Print a task and its whole plan."""
    from qlrf_pipelines.control.errors import ControlError

    with _store() as store:
        try:
            task = store.get_task(task_id)
        except ControlError as exc:
            raise _fail(exc) from None
        actions = store.actions(task_id)
        calls = store.tool_invocations(task_id=task_id)
    if as_json:
        data = task.to_dict() | {"plan": json.loads(task.plan_json), "actions": actions, "tool_invocations": calls}
        data.pop("plan_json", None)
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(_describe(task))
    for action in actions:
        call = action["details"].get("call", "")
        click.echo(f"  action  {action['phase']:<8} {action['action']:<14} {action['status']:<7} {call}")
    for row in calls:
        click.echo(f"  tool    step {row['step']:<3} {row['tool']:<24} {row['result_size']:>5} rows "
                   f"{row['duration_ms']:>6} ms  {json.dumps(row['arguments'], sort_keys=True)}")


def _decision_command(decision: str, help_text: str, who: str):
    @tasks.command(decision, help=help_text)
    @click.argument("task_id")
    @click.option("--user", required=True, help=who)
    @click.option("--reason", required=True, help="Why; kept in the audit log.")
    @click.option("--json", "as_json", is_flag=True)
    def command(task_id: str, user: str, reason: str, as_json: bool) -> None:
        from qlrf_pipelines.control.errors import ControlError

        with _store() as store:
            try:
                decide = store.approve if decision == "approve" else store.reject
                result = decide(task_id, user, reason, _rbac())
            except ControlError as exc:
                raise _fail(exc) from None
        _echo_decision(result, as_json)

    return command


_decision_command(
    "approve",
    "Approve the current plan version (binds to its hash and snapshot; expires in 72 h).",
    "Who approves (must hold APPROVE_AI_TASKS; not the requester or last editor).",
)
_decision_command("reject", "Reject the task; it will not be executed.", "Who rejects (must hold APPROVE_AI_TASKS).")


def _echo_decision(decision, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        click.echo(json.dumps(asdict(decision), indent=2, default=str))
    else:
        click.echo(f"{decision.task_id}: {decision.decision} by {decision.decided_by} (plan v{decision.plan_version}, "
                   f"hash {decision.plan_hash[:12]})")


@tasks.command("modify")
@click.argument("task_id")
@click.option("--user", required=True, help="Who edits (must hold EXECUTE_AI_TASKS).")
@click.option("--plan-file", required=True, type=click.Path(exists=True, dir_okay=False), help="The edited plan (JSON).")
@click.option("--json", "as_json", is_flag=True)
def tasks_modify(task_id: str, user: str, plan_file: str, as_json: bool) -> None:
    """Replace the plan; it is validated again and needs a fresh approval.

    Start from `qlrf tasks show ID --json`'s "plan" field.
    """
    from qlrf_pipelines.control.errors import ControlError
    from qlrf_pipelines.policy.validate import validate_plan

    text = Path(plan_file).read_text()
    plan, verdicts = validate_plan(text)
    if plan is None:
        raise click.ClickException(f"{plan_file}: not a valid plan: " + "; ".join(v.message for v in verdicts))
    with _store() as store:
        try:
            task = store.modify_plan(task_id, plan, verdicts, user, _rbac())
        except ControlError as exc:
            raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(task.to_dict(), indent=2, default=str))
    else:
        click.echo(f"{task.task_id}: plan v{task.plan_version} ({task.plan_hash[:12]}) -> {task.status}")
        for verdict in task.denied_verdicts:
            click.echo(f"  DENY {verdict.rule}: {verdict.message}")


@click.group()
def audit() -> None:
    """The hash-chained audit log of every task state change."""


def _require_auditor(user: str | None) -> None:
    from qlrf_pipelines.control.errors import ControlError

    if user is None:
        return
    try:
        _rbac().require(user, "VIEW_AUDIT_LOGS")
    except ControlError as exc:
        raise _fail(exc) from None


@audit.command("list")
@click.option("--task", "task_id", help="Only events of this task.")
@click.option("--user", help="Check that this user holds VIEW_AUDIT_LOGS.")
@click.option("--json", "as_json", is_flag=True)
def audit_list(task_id: str | None, user: str | None, as_json: bool) -> None:
    """List audit events in chain order."""
    from tabulate import tabulate

    _require_auditor(user)
    with _store() as store:
        events = store.audit_events(task_id)
    if as_json:
        click.echo(json.dumps(events, indent=2, default=str))
        return
    rows = [(e["seq"], str(e["at"])[:19], e["actor"], e["action"], e["task_id"] or "", e["hash"][:12]) for e in events]
    click.echo(tabulate(rows, headers=["seq", "at (UTC)", "actor", "action", "task", "hash"]) if rows else "no events")


@audit.command("verify")
@click.option("--user", help="Check that this user holds VIEW_AUDIT_LOGS.")
def audit_verify(user: str | None) -> None:
    """Recompute the hash chain; exits 1 naming every edited, deleted or reordered event."""
    _require_auditor(user)
    with _store() as store:
        result = store.verify_audit()
    if result.ok:
        click.echo(f"audit chain ok: {result.checked} events")
        return
    for problem in result.problems:
        click.echo(problem, err=True)
    raise SystemExit(1)


@click.command()
@click.option("--sensor", "sensor_names", multiple=True, help="Only this sensor (repeatable).")
def tick(sensor_names: tuple[str, ...]) -> None:
    """Evaluate every sensor once and run what it requests, in-process (what the daemon does).

    drift_sensor plans remediation after a warehouse build; approval_sensor executes approved
    tasks. Run keys make repeated ticks harmless.
    """
    ok = run_tick(list(sensor_names) or None)
    raise SystemExit(0 if ok else 1)


def run_tick(sensor_names: list[str] | None = None) -> bool:
    from qlrf_pipelines.definitions import build_definitions
    from qlrf_pipelines.instance import get_instance
    from qlrf_pipelines.tick import tick_sensors

    paths = settings.paths()
    defs = build_definitions()
    instance = get_instance(paths)
    ok = True
    with open(os.devnull, "w") as quiet, _redirect(quiet):
        reports = tick_sensors(defs, instance, paths, sensor_names, log=lambda _msg: None)
    for report in reports:
        if not report.runs and not report.skipped_run_keys:
            click.echo(f"{report.sensor}: nothing to do ({report.skip_message or 'no requests'})")
        for run_key in report.skipped_run_keys:
            click.echo(f"{report.sensor}: run key {run_key} already ran, skipped")
        for job_name, run_id, success in report.runs:
            click.echo(f"{report.sensor}: {job_name} run {run_id} {'succeeded' if success else 'FAILED'}")
            ok = ok and success
    return ok


@contextmanager
def _redirect(target):
    import contextlib

    with contextlib.redirect_stdout(target):
        yield
