"""The control store's tables (SQLAlchemy Core). The schema itself is created by the Alembic
migrations in control/migrations; a test checks that these definitions and the migrations agree.

Timestamps are stored as UTC and come back timezone-aware on SQLite and PostgreSQL alike. The audit
log keeps its timestamp as ISO text instead, because that text is what its hash covers.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from qlrf_pipelines.models.vocabulary import IMAGE_STATUSES, LINEAGE_RELATIONS

STATUSES: tuple[str, ...] = (
    "pending_approval",
    "policy_denied",
    "approved",
    "rejected",
    "running",
    "succeeded",
    "failed",
    "rolled_back",
)
DECISIONS: tuple[str, ...] = ("approved", "rejected")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out (SQLite has no time zones; PostgreSQL has timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the control store stores UTC, pass an aware datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("number", Integer, nullable=False, unique=True, comment="T-000123 is number 123"),
    Column("title", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("site_id", String(200), nullable=False),
    Column("environment", String(100), nullable=False),
    Column("family", String(200), nullable=False),
    Column("risk", String(20), nullable=False),
    Column("dedupe_key", String(500), nullable=True, unique=True),
    Column("source_run_id", String(100), nullable=True),
    Column("current_version", Integer, nullable=False),
    Column("run_id", String(100), nullable=True, comment="the run executing the task"),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    CheckConstraint(_in("status", STATUSES), name="status"),
)

task_plans = Table(
    "task_plans",
    metadata,
    Column("task_id", String(32), ForeignKey("tasks.task_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("plan_json", Text, nullable=False, comment="canonical JSON; sha256 of it is plan_hash"),
    Column("plan_hash", String(64), nullable=False),
    Column("snapshot_key", String(200), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("verdicts_json", Text, nullable=False),
    Column("policy_version", String(200), nullable=False),
    Column("valid", Boolean, nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("approval_id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(32), nullable=False, index=True),
    Column("plan_version", Integer, nullable=False),
    Column("plan_hash", String(64), nullable=False),
    Column("snapshot_key", String(200), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_reason", Text, nullable=True),
    ForeignKeyConstraint(["task_id", "plan_version"], ["task_plans.task_id", "task_plans.version"]),
    CheckConstraint(_in("decision", DECISIONS), name="decision"),
)

tool_invocations = Table(
    "tool_invocations",
    metadata,
    Column("invocation_id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(32), ForeignKey("tasks.task_id"), nullable=True, index=True),
    Column("run_id", String(100), nullable=True),
    Column("tool", String(200), nullable=False),
    Column("arguments_json", Text, nullable=False),
    Column("result_size", Integer, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("invoked_at", UtcDateTime, nullable=False),
)

task_actions = Table(
    "task_actions",
    metadata,
    Column("action_id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(32), ForeignKey("tasks.task_id"), nullable=False),
    Column("plan_hash", String(64), nullable=False),
    Column("phase", String(100), nullable=False),
    Column("asset_id", String(500), nullable=False),
    Column("action", String(100), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("details_json", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("task_id", "plan_hash", "phase", "asset_id", "action", name="uq_task_actions_step"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False, comment="ISO-8601 UTC text, as hashed"),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("task_id", String(32), nullable=True, index=True),
    Column("details_json", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row (id = 1): the last appended event. Writers lock it (SELECT ... FOR UPDATE) so appends are
# serialised on PostgreSQL; on SQLite every write transaction is BEGIN IMMEDIATE, which does the same.
audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)


# Lineage a person registered (`qlrf images link`); lineage read from image tags at discovery lives
# in the lake. One row per (child, parent): linking again with another relation replaces it.
image_lineage_links = Table(
    "image_lineage_links",
    metadata,
    Column("child_image_id", String(500), primary_key=True),
    Column("parent_image_id", String(500), primary_key=True),
    Column("relation", String(32), nullable=False),
    Column("linked_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("linked_at", UtcDateTime, nullable=False),
    CheckConstraint(_in("relation", LINEAGE_RELATIONS), name="relation"),
)

# Every status change of a golden image, in order; the newest per image is its status, overriding
# the status its provider tags carry. A cascaded revoke points at the promotion that caused it.
image_promotions = Table(
    "image_promotions",
    metadata,
    Column("promotion_id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", String(500), nullable=False, index=True),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=False),
    Column("promoted_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("promoted_at", UtcDateTime, nullable=False),
    Column("cascade_from", Integer, ForeignKey("image_promotions.promotion_id"), nullable=True),
    CheckConstraint(_in("to_status", IMAGE_STATUSES), name="to_status"),
)


# A person accepted that one asset fails one control until a date (inclusive): the evaluation then
# reports that failure as waived, not passed. framework_id null = the control id in any framework.
# Rows are never deleted; a revoke stamps revoked_at/by/reason, so what was waived when stays known.
compliance_waivers = Table(
    "compliance_waivers",
    metadata,
    Column("waiver_id", String(32), primary_key=True, comment="W-000123"),
    Column("control_id", String(200), nullable=False, index=True),
    Column("framework_id", String(200), nullable=True),
    Column("asset_id", String(500), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_on", Date, nullable=False, comment="waived through this date (UTC), inclusive"),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_by", String(200), nullable=True),
    Column("revoke_reason", Text, nullable=True),
    CheckConstraint(
        "(revoked_at IS NULL AND revoked_by IS NULL) OR (revoked_at IS NOT NULL AND revoked_by IS NOT NULL)",
        name="revocation",
    ),
)
