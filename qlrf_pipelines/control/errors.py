"""Errors of the control store. Each message names what was refused and why, for a person to read."""

from __future__ import annotations


class ControlError(Exception):
    """Base class: anything the control store refuses."""


class TaskNotFound(ControlError, LookupError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task {task_id!r} in the control store")
        self.task_id = task_id


class InvalidTransition(ControlError):
    """The task is not in a status that allows this step (e.g. finishing a task that never started)."""


class PlanMismatch(ControlError, ValueError):
    """A modified plan tries to change what the task is about (site, environment or family)."""


class PermissionDenied(ControlError, PermissionError):
    """The RBAC file does not give this user the permission the step needs."""

    def __init__(self, user: str, permission: str, detail: str = "") -> None:
        message = f"user {user!r} lacks permission {permission}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.user = user
        self.permission = permission


class ApprovalRefused(ControlError):
    """An approve/reject decision was refused; the refusal is in the audit log."""


class ExecutionRefused(ControlError):
    """An approved task may not run (yet); the refusal is in the audit log, the status is unchanged."""


class RbacError(ControlError, ValueError):
    """The RBAC file cannot be used; the message names the file and the field."""
