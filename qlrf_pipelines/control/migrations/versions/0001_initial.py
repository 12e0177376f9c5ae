"""The first control store schema: tasks, plan versions, approvals, tool invocations, the action
journal and the hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = ("pending_approval", "policy_denied", "approved", "rejected", "running", "succeeded", "failed", "rolled_back")
GENESIS_HASH = "0" * 64


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False, comment="T-000123 is number 123"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("site_id", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("risk", sa.String(20), nullable=False),
        sa.Column("dedupe_key", sa.String(500), nullable=True),
        sa.Column("source_run_id", sa.String(100), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=True, comment="the run executing the task"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("task_id", name="pk_tasks"),
        sa.UniqueConstraint("number", name="uq_tasks_number"),
        sa.UniqueConstraint("dedupe_key", name="uq_tasks_dedupe_key"),
        sa.CheckConstraint(_in("status", STATUSES), name="ck_tasks_status"),
    )
    op.create_table(
        "task_plans",
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("plan_json", sa.Text(), nullable=False, comment="canonical JSON; sha256 of it is plan_hash"),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("snapshot_key", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        sa.Column("verdicts_json", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.String(200), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "version", name="pk_task_plans"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.task_id"], name="fk_task_plans_task_id_tasks"),
    )
    op.create_table(
        "approvals",
        sa.Column("approval_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("snapshot_key", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("decided_at"),
        _ts("expires_at", nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        _ts("revoked_at", nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("approval_id", name="pk_approvals"),
        sa.ForeignKeyConstraint(
            ["task_id", "plan_version"],
            ["task_plans.task_id", "task_plans.version"],
            name="fk_approvals_task_id_task_plans",
        ),
        sa.CheckConstraint("decision IN ('approved', 'rejected')", name="ck_approvals_decision"),
    )
    op.create_index("ix_approvals_task_id", "approvals", ["task_id"])
    op.create_table(
        "tool_invocations",
        sa.Column("invocation_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("arguments_json", sa.Text(), nullable=False),
        sa.Column("result_size", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        _ts("invoked_at"),
        sa.PrimaryKeyConstraint("invocation_id", name="pk_tool_invocations"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.task_id"], name="fk_tool_invocations_task_id_tasks"),
    )
    op.create_index("ix_tool_invocations_task_id", "tool_invocations", ["task_id"])
    op.create_table(
        "task_actions",
        sa.Column("action_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(100), nullable=False),
        sa.Column("asset_id", sa.String(500), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("action_id", name="pk_task_actions"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.task_id"], name="fk_task_actions_task_id_tasks"),
        sa.UniqueConstraint("task_id", "plan_hash", "phase", "asset_id", "action", name="uq_task_actions_step"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(40), nullable=False, comment="ISO-8601 UTC text, as hashed"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_task_id", "audit_events", ["task_id"])
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain_head"),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}])


def downgrade() -> None:
    for table in ("audit_chain_head", "audit_events", "task_actions", "tool_invocations", "approvals", "task_plans", "tasks"):
        op.drop_table(table)
