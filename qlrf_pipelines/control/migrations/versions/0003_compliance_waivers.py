"""Compliance waivers: a person accepted that one asset fails one control, until a date.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compliance_waivers",
        sa.Column("waiver_id", sa.String(32), nullable=False, comment="W-000123"),
        sa.Column("control_id", sa.String(200), nullable=False),
        sa.Column("framework_id", sa.String(200), nullable=True),
        sa.Column("asset_id", sa.String(500), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False, comment="waived through this date (UTC), inclusive"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("waiver_id", name="pk_compliance_waivers"),
        sa.CheckConstraint(
            "(revoked_at IS NULL AND revoked_by IS NULL) OR (revoked_at IS NOT NULL AND revoked_by IS NOT NULL)",
            name="ck_compliance_waivers_revocation",
        ),
    )
    op.create_index("ix_compliance_waivers_control_id", "compliance_waivers", ["control_id"])


def downgrade() -> None:
    op.drop_index("ix_compliance_waivers_control_id", table_name="compliance_waivers")
    op.drop_table("compliance_waivers")
