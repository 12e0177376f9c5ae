"""The rules for deciding on and running a plan, as pure functions over task views.

Each returns None when the step may go ahead, else the reason it may not, in words a person can
act on. The store records the reason in the audit log before it raises, so refusals are evidence.
"""

from __future__ import annotations

from datetime import datetime

from qlrf_pipelines.control.rbac import Permission, Rbac
from qlrf_pipelines.control.views import TaskView
from qlrf_pipelines.planning.plan import plan_hash_of

DECIDABLE = {"approve": ("pending_approval",), "reject": ("pending_approval", "policy_denied", "approved")}


def _authors(task: TaskView) -> set[str]:
    """Who proposed the current plan: they may not also approve it (separation of duties)."""
    authors = {task.requested_by, task.plan_created_by}
    try:
        authors.add(task.plan().task.requested_by)
    except ValueError:
        pass
    return authors


def _role_problem(user: str, rbac: Rbac) -> str | None:
    if not rbac.knows(user):
        return f"user {user!r} is not listed in the RBAC file {rbac.source}"
    if not rbac.has(user, Permission.APPROVE_AI_TASKS):
        return f"user {user!r} lacks permission {Permission.APPROVE_AI_TASKS.value}"
    return None


def stored_hash_problem(task: TaskView) -> str | None:
    computed = plan_hash_of(task.plan_json)
    if computed != task.plan_hash:
        return (
            f"plan hash mismatch: plan version {task.plan_version} stored with plan_hash {task.plan_hash} "
            f"but its plan_json hashes to {computed}; the plan was changed in the store"
        )
    return None


def decision_problem(task: TaskView | None, task_id: str, user: str, rbac: Rbac, decision: str) -> str | None:
    """Why `user` may not approve / reject `task` now, or None."""
    problem = _role_problem(user, rbac)
    if problem:
        return problem
    if task is None:
        return f"no task {task_id!r}"
    allowed = DECIDABLE[decision]
    if task.status not in allowed:
        if decision == "approve" and task.status == "policy_denied":
            rules = ", ".join(v.rule for v in task.denied_verdicts) or "unknown rule"
            return f"task {task_id} is policy_denied ({rules}): modify the plan so it passes, then approve"
        return f"task {task_id} is {task.status}; {decision} needs status {' or '.join(allowed)}"
    if decision == "reject":
        return None
    if not task.plan_valid:
        return f"plan version {task.plan_version} of task {task_id} did not pass validation"
    problem = stored_hash_problem(task)
    if problem:
        return problem
    if user == task.requested_by:
        return f"user {user!r} requested task {task_id} and may not approve it"
    if user in _authors(task):
        return (
            f"user {user!r} last edited the plan of task {task_id} (version {task.plan_version}) "
            "and may not approve it"
        )
    return None


def execution_problem(task: TaskView | None, task_id: str, rbac: Rbac, now: datetime) -> str | None:
    """Why an approved task may not start now, or None: re-checked right before the first action."""
    if task is None:
        return f"no task {task_id!r}"
    if task.status != "approved":
        return f"task {task_id} is {task.status}, not approved"
    problem = stored_hash_problem(task)
    if problem:
        return problem
    try:
        task.plan()
    except ValueError as exc:
        return f"plan version {task.plan_version} no longer parses: {exc}"
    if not task.plan_valid:
        return f"plan version {task.plan_version} did not pass validation"
    approval = task.current_approval()
    if approval is None:
        revoked = [a for a in task.approvals if a.decision == "approved" and a.revoked]
        why = f" (approval {revoked[-1].approval_id} was revoked: {revoked[-1].revoked_reason})" if revoked else ""
        return f"no unrevoked approval for plan version {task.plan_version}{why}"
    if approval.plan_hash != task.plan_hash:
        return (
            f"approval {approval.approval_id} binds plan_hash {approval.plan_hash} "
            f"but plan version {task.plan_version} has plan_hash {task.plan_hash}"
        )
    if approval.snapshot_key != task.snapshot_key:
        return f"approval {approval.approval_id} binds snapshot {approval.snapshot_key}, the plan {task.snapshot_key}"
    if approval.expires_at is not None and now >= approval.expires_at:
        return f"approval {approval.approval_id} by {approval.decided_by} expired at {approval.expires_at.isoformat()}"
    problem = _role_problem(approval.decided_by, rbac)
    if problem:
        return f"approver no longer authorised: {problem}"
    if approval.decided_by in _authors(task):
        return f"approver {approval.decided_by!r} also requested or edited the plan (separation of duties)"
    return None
