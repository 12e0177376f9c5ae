"""The control store: remediation tasks, plan versions, approvals, RBAC and the hash-chained audit log.

No Dagster here: the CLI, the sensors and the jobs all go through ControlStore.
"""

from qlrf_pipelines.control.audit import AuditVerification
from qlrf_pipelines.control.errors import (
    ApprovalRefused,
    ControlError,
    ExecutionRefused,
    InvalidTransition,
    PermissionDenied,
    PlanMismatch,
    RbacError,
    TaskNotFound,
)
from qlrf_pipelines.control.rbac import Permission, Rbac, rbac_file
from qlrf_pipelines.control.store import DEFAULT_APPROVAL_TTL, ControlStore
from qlrf_pipelines.control.tables import STATUSES
from qlrf_pipelines.control.views import ApprovalView, PlanVersionView, TaskView

__all__ = [
    "DEFAULT_APPROVAL_TTL",
    "STATUSES",
    "ApprovalRefused",
    "ApprovalView",
    "AuditVerification",
    "ControlError",
    "ControlStore",
    "ExecutionRefused",
    "InvalidTransition",
    "PermissionDenied",
    "Permission",
    "PlanMismatch",
    "PlanVersionView",
    "Rbac",
    "RbacError",
    "TaskNotFound",
    "TaskView",
    "rbac_file",
]
