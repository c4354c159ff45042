"""duty workflow: alarm SLA/ownership columns, evidence, durable timers, duty roster

Revision ID: 0004_workflow
Revises: 0002_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_workflow"
down_revision = "0002_alerts"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner_level", sa.String(16), nullable=False, server_default="street")
        )
        batch_op.add_column(sa.Column("ack_due_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("report_due_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("loop_due_at", _TS, nullable=True))
        batch_op.add_column(
            sa.Column("loop_breached", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("disposition", sa.String(32), nullable=True))
        batch_op.add_column(
            sa.Column("escalations", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("acknowledged_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("dispatched_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("reported_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("resolved_at", _TS, nullable=True))
        batch_op.create_index("ix_alarms_loop_due_at", ["loop_due_at"], unique=False)

    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("ref", sa.String(96), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("fired_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
        sa.UniqueConstraint("key", name=op.f("uq_timers_key")),
    )
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timers_ref"), ["ref"], unique=False)
        batch_op.create_index("ix_timers_state_due_at", ["state", "due_at"], unique=False)

    op.create_table(
        "alarm_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.String(96), nullable=False),
        sa.Column("uploaded_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_alarm_evidence_alarm_id_alarms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_evidence")),
    )
    with op.batch_alter_table("alarm_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_evidence_alarm_id"), ["alarm_id"])
        batch_op.create_index(batch_op.f("ix_alarm_evidence_sha256"), ["sha256"])

    op.create_table(
        "duty_shifts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("jurisdiction_id", sa.String(32), nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("officers", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(96), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdictions.id"],
            name=op.f("fk_duty_shifts_jurisdiction_id_jurisdictions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_shifts")),
    )
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_shifts_jurisdiction_id"), ["jurisdiction_id"])
        batch_op.create_index(batch_op.f("ix_duty_shifts_starts_at"), ["starts_at"])

    op.create_table(
        "duty_signons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("jurisdiction_id", sa.String(32), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=True),
        sa.Column("signed_on_at", _TS, nullable=False),
        sa.Column("signed_off_at", _TS, nullable=True),
        sa.Column("handover_note", sa.Text(), nullable=False),
        sa.Column("auto_signed_off", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdictions.id"],
            name=op.f("fk_duty_signons_jurisdiction_id_jurisdictions"),
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["duty_shifts.id"], name=op.f("fk_duty_signons_shift_id_duty_shifts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_signons")),
    )
    with op.batch_alter_table("duty_signons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_signons_jurisdiction_id"), ["jurisdiction_id"])
        batch_op.create_index(
            "uq_duty_signons_open_user",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("signed_off_at IS NULL"),
            postgresql_where=sa.text("signed_off_at IS NULL"),
        )


def downgrade() -> None:
    op.drop_table("duty_signons")
    op.drop_table("duty_shifts")
    op.drop_table("alarm_evidence")
    op.drop_table("timers")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_loop_due_at")
        for name in (
            "resolved_at",
            "reported_at",
            "dispatched_at",
            "acknowledged_at",
            "escalations",
            "disposition",
            "loop_breached",
            "loop_due_at",
            "report_due_at",
            "ack_due_at",
            "owner_level",
        ):
            batch_op.drop_column(name)
