"""visit notices: the webhook notices to relatives (approved, refused, cancelled, reminder)
and their delivery

Revision ID: 0017_visit_notices
Revises: 0009_visits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_visit_notices"
down_revision = "0009_visits"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "visit_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("relative_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", _TZ, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("sent_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["relative_id"],
            ["relatives.id"],
            name=op.f("fk_visit_notices_relative_id_relatives"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_notices_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_notices")),
        sa.UniqueConstraint(
            "visit_id",
            "kind",
            "relative_id",
            name=op.f("uq_visit_notices_visit_id_kind_relative_id"),
        ),
    )
    with op.batch_alter_table("visit_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_notices_visit_id"), ["visit_id"])
        batch_op.create_index(batch_op.f("ix_visit_notices_relative_id"), ["relative_id"])


def downgrade() -> None:
    op.drop_table("visit_notices")
