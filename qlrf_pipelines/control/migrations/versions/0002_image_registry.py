"""Golden image registry decisions: lineage links a person registered, and image promotions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RELATIONS = ("derived_from", "patched_from", "rebuilt_from")
IMAGE_STATUSES = ("testing", "production", "deprecated", "revoked")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "image_lineage_links",
        sa.Column("child_image_id", sa.String(500), nullable=False),
        sa.Column("parent_image_id", sa.String(500), nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("linked_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("child_image_id", "parent_image_id", name="pk_image_lineage_links"),
        sa.CheckConstraint(_in("relation", RELATIONS), name="ck_image_lineage_links_relation"),
    )
    op.create_table(
        "image_promotions",
        sa.Column("promotion_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(500), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("promoted_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cascade_from", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("promotion_id", name="pk_image_promotions"),
        sa.ForeignKeyConstraint(
            ["cascade_from"], ["image_promotions.promotion_id"], name="fk_image_promotions_cascade_from_image_promotions"
        ),
        sa.CheckConstraint(_in("to_status", IMAGE_STATUSES), name="ck_image_promotions_to_status"),
    )
    op.create_index("ix_image_promotions_image_id", "image_promotions", ["image_id"])


def downgrade() -> None:
    op.drop_index("ix_image_promotions_image_id", table_name="image_promotions")
    op.drop_table("image_promotions")
    op.drop_table("image_lineage_links")
