"""spot-checks: the record, its items, the campaign's assignments, the subject login's link

Revision ID: 0006_spotchecks
Revises: 0004_workflow
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_spotchecks"
down_revision = "0004_workflow"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_subject_id"), ["subject_id"])

    op.create_table(
        "spotchecks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(length=96), nullable=False),
        sa.Column("officer_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ring_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("answer_lat", sa.Float(), nullable=True),
        sa.Column("answer_lon", sa.Float(), nullable=True),
        sa.Column("answer_accuracy_m", sa.Float(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("missed_alarm_id", sa.Integer(), nullable=True),
        sa.Column("raised_alarm_id", sa.Integer(), nullable=True),
        sa.Column("open_key", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spotchecks")),
        sa.UniqueConstraint("open_key", name=op.f("uq_spotchecks_open_key")),
    )
    with op.batch_alter_table("spotchecks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spotchecks_subject_id"), ["subject_id"])
        batch_op.create_index(batch_op.f("ix_spotchecks_street_id"), ["street_id"])
        batch_op.create_index(batch_op.f("ix_spotchecks_district_id"), ["district_id"])
        batch_op.create_index(batch_op.f("ix_spotchecks_alarm_id"), ["alarm_id"])
        batch_op.create_index(batch_op.f("ix_spotchecks_state"), ["state"])
        batch_op.create_index(batch_op.f("ix_spotchecks_created_at"), ["created_at"])

    op.create_table(
        "spotcheck_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("spotcheck_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["spotcheck_id"],
            ["spotchecks.id"],
            name=op.f("fk_spotcheck_items_spotcheck_id_spotchecks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spotcheck_items")),
    )
    with op.batch_alter_table("spotcheck_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spotcheck_items_spotcheck_id"), ["spotcheck_id"])

    op.create_table(
        "spotcheck_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spotcheck_assignments")),
        sa.UniqueConstraint(
            "day", "subject_id", name=op.f("uq_spotcheck_assignments_day_subject_id")
        ),
    )
    with op.batch_alter_table("spotcheck_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spotcheck_assignments_street_id"), ["street_id"])


def downgrade() -> None:
    op.drop_table("spotcheck_assignments")
    op.drop_table("spotcheck_items")
    op.drop_table("spotchecks")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_subject_id"), type_="unique")
        batch_op.drop_column("subject_id")
