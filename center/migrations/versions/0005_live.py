"""live: one-time wall pairing codes

Revision ID: 0005_live
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_live"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wall_pairing_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("jurisdiction_id", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("credential_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdictions.id"],
            name=op.f("fk_wall_pairing_codes_jurisdiction_id_jurisdictions"),
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_wall_pairing_codes")),
    )
    with op.batch_alter_table("wall_pairing_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wall_pairing_codes_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("wall_pairing_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wall_pairing_codes_expires_at"))
    op.drop_table("wall_pairing_codes")
