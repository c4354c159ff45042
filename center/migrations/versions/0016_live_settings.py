"""live settings: alarm severities, SLA minutes and loop hours changed from the admin page

Revision ID: 0016_live_settings
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_live_settings"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=2000), nullable=False),
        sa.Column("updated_by", sa.String(length=96), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_live_settings")),
    )


def downgrade() -> None:
    op.drop_table("live_settings")
