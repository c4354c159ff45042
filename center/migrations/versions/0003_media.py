"""media tables: recordings and snapshots

Revision ID: 0003_media
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_media"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_recordings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.String(length=32), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_recordings")),
    )
    with op.batch_alter_table("media_recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_recordings_room_id"), ["room_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_recordings_state"), ["state"], unique=False)

    op.create_table(
        "media_snapshots",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("track_kind", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_snapshots")),
    )
    with op.batch_alter_table("media_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_snapshots_room_id"), ["room_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("media_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_snapshots_room_id"))
    op.drop_table("media_snapshots")
    with op.batch_alter_table("media_recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_recordings_state"))
        batch_op.drop_index(batch_op.f("ix_media_recordings_room_id"))
    op.drop_table("media_recordings")
