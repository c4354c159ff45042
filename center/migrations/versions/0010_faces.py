"""faces: baseline photos per subject and the face checks of check-ins and snapshots

Revision ID: 0010_faces
Revises: 0006_spotchecks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_faces"
down_revision = "0006_spotchecks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_baselines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("embedding", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=96), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_baselines")),
        sa.UniqueConstraint(
            "subject_id", "sha256", name=op.f("uq_face_baselines_subject_id_sha256")
        ),
    )
    with op.batch_alter_table("face_baselines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_baselines_subject_id"), ["subject_id"])

    op.create_table(
        "face_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("spotcheck_id", sa.Integer(), nullable=True),
        sa.Column("snapshot_id", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("problem", sa.String(length=200), nullable=False),
        sa.Column("embedding", sa.Text(), nullable=True),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_checks")),
        sa.UniqueConstraint("checkin_id", name=op.f("uq_face_checks_checkin_id")),
        sa.UniqueConstraint("snapshot_id", name=op.f("uq_face_checks_snapshot_id")),
    )
    with op.batch_alter_table("face_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_checks_subject_id"), ["subject_id"])
        batch_op.create_index(batch_op.f("ix_face_checks_spotcheck_id"), ["spotcheck_id"])
        batch_op.create_index(batch_op.f("ix_face_checks_outcome"), ["outcome"])


def downgrade() -> None:
    op.drop_table("face_checks")
    op.drop_table("face_baselines")
