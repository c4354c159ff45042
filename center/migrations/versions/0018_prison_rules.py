"""visit rules per prison: overrides of the visit_* settings (empty: the setting)

Revision ID: 0018_prison_rules
Revises: 0009_visits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_prison_rules"
down_revision = "0009_visits"
branch_labels = None
depends_on = None

_COLUMNS = (
    "visit_minutes",
    "visit_max_relatives",
    "visit_monthly_quota",
    "visit_lead_working_days",
)


def upgrade() -> None:
    with op.batch_alter_table("prisons", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prisons", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
