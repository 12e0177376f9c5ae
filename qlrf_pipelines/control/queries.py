"""Reading the control store: rows to views, and the export for the lake (no writes here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from qlrf_pipelines.control.audit import iso
from qlrf_pipelines.control.tables import approvals, task_plans, tasks, tool_invocations
from qlrf_pipelines.control.views import ApprovalView, PlanVersionView, TaskView, verdicts_from_json

_CURRENT_PLAN = and_(task_plans.c.task_id == tasks.c.task_id, task_plans.c.version == tasks.c.current_version)


def load_views(conn: Connection, where: Any = None) -> list[TaskView]:
    """Tasks (oldest first) with their current plan version and every decision on them."""
    query = select(tasks, task_plans).join(task_plans, _CURRENT_PLAN).order_by(tasks.c.number)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query).all()
    if not rows:
        return []
    by_task: dict[str, list[ApprovalView]] = {row.task_id: [] for row in rows}
    decided = select(approvals).where(approvals.c.task_id.in_(list(by_task))).order_by(approvals.c.approval_id)
    for approval in conn.execute(decided):
        by_task[approval.task_id].append(ApprovalView(**dict(approval._mapping)))
    views = []
    for row in rows:
        t = p = row._mapping
        views.append(
            TaskView(
                task_id=t[tasks.c.task_id],
                title=t[tasks.c.title],
                status=t[tasks.c.status],
                requested_by=t[tasks.c.requested_by],
                created_at=t[tasks.c.created_at],
                updated_at=t[tasks.c.updated_at],
                site_id=t[tasks.c.site_id],
                environment=t[tasks.c.environment],
                family=t[tasks.c.family],
                risk=t[tasks.c.risk],
                dedupe_key=t[tasks.c.dedupe_key],
                source_run_id=t[tasks.c.source_run_id],
                run_id=t[tasks.c.run_id],
                started_at=t[tasks.c.started_at],
                finished_at=t[tasks.c.finished_at],
                plan_version=p[task_plans.c.version],
                plan_json=p[task_plans.c.plan_json],
                plan_hash=p[task_plans.c.plan_hash],
                plan_created_by=p[task_plans.c.created_by],
                plan_created_at=p[task_plans.c.created_at],
                snapshot_key=p[task_plans.c.snapshot_key],
                verdicts=verdicts_from_json(p[task_plans.c.verdicts_json]),
                policy_version=p[task_plans.c.policy_version],
                plan_valid=bool(p[task_plans.c.valid]),
                approvals=by_task[t[tasks.c.task_id]],
            )
        )
    return views


def load_view(conn: Connection, task_id: str) -> TaskView | None:
    found = load_views(conn, tasks.c.task_id == task_id)
    return found[0] if found else None


def plan_versions(conn: Connection, task_id: str) -> list[PlanVersionView]:
    rows = conn.execute(select(task_plans).where(task_plans.c.task_id == task_id).order_by(task_plans.c.version))
    return [
        PlanVersionView(
            task_id=r.task_id,
            version=r.version,
            plan_json=r.plan_json,
            plan_hash=r.plan_hash,
            snapshot_key=r.snapshot_key,
            created_by=r.created_by,
            created_at=r.created_at,
            verdicts=verdicts_from_json(r.verdicts_json),
            policy_version=r.policy_version,
            valid=bool(r.valid),
        )
        for r in rows
    ]


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (iso(v) if isinstance(v, datetime) else v) for k, v in data.items()}


def export_rows(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """ai_tasks, ai_task_plans and ai_tool_invocations as JSON-able rows (timestamps ISO-8601 UTC)."""
    views = load_views(conn)
    plans = conn.execute(select(task_plans).order_by(task_plans.c.task_id, task_plans.c.version)).all()
    calls = conn.execute(select(tool_invocations).order_by(tool_invocations.c.invocation_id)).all()
    current = {v.task_id: v.plan_version for v in views}
    ai_tasks = []
    for v in views:
        approval = v.current_approval()
        ai_tasks.append(
            _plain(
                {
                    "task_id": v.task_id,
                    "title": v.title,
                    "status": v.status,
                    "requested_by": v.requested_by,
                    "site_id": v.site_id,
                    "environment": v.environment,
                    "family": v.family,
                    "risk": v.risk,
                    "dedupe_key": v.dedupe_key,
                    "source_run_id": v.source_run_id,
                    "run_id": v.run_id,
                    "plan_version": v.plan_version,
                    "plan_hash": v.plan_hash,
                    "plan_valid": v.plan_valid,
                    "policy_version": v.policy_version,
                    "approved_by": approval.decided_by if approval else None,
                    "approved_at": approval.decided_at if approval else None,
                    "approval_expires_at": approval.expires_at if approval else None,
                    "created_at": v.created_at,
                    "updated_at": v.updated_at,
                    "started_at": v.started_at,
                    "finished_at": v.finished_at,
                }
            )
        )
    ai_task_plans = [
        _plain(dict(p._mapping) | {"valid": bool(p.valid), "is_current": current.get(p.task_id) == p.version})
        for p in plans
    ]
    return {
        "ai_tasks": ai_tasks,
        "ai_task_plans": ai_task_plans,
        "ai_tool_invocations": [_plain(dict(c._mapping)) for c in calls],
    }
