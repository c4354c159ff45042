"""idempotency per API key: event ids are unique per (credential_id, event_id)

One integration's check-in was dropped as a ``duplicate`` of another's whose event id happened
to match; payment APIs scope idempotency keys per caller, and so do we now.

Revision ID: 0007_idempotency_per_key
Revises: 0002_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_idempotency_per_key"
down_revision = "0002_alerts"
branch_labels = None
depends_on = None

_TABLES = ("checkins", "device_events", "location_fixes")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table != "checkins":
                batch_op.add_column(
                    sa.Column(
                        "credential_id", sa.String(length=32), nullable=False, server_default=""
                    )
                )
            batch_op.drop_constraint(f"uq_{table}_event_id", type_="unique")
            batch_op.create_unique_constraint(
                f"uq_{table}_credential_event", ["credential_id", "event_id"]
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_credential_event", type_="unique")
            batch_op.create_unique_constraint(f"uq_{table}_event_id", ["event_id"])
            if table != "checkins":
                batch_op.drop_column("credential_id")
