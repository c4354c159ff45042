"""prison family visits: prisons, terminals, staff links, inmates, relatives, visit points,
visits and their parties

Revision ID: 0009_visits
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_visits"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _index(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column])


def upgrade() -> None:
    op.create_table(
        "prisons",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prisons")),
    )
    op.create_table(
        "prison_terminals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("prison_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["prison_id"], ["prisons.id"], name=op.f("fk_prison_terminals_prison_id_prisons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prison_terminals")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_prison_terminals_credential_id")),
    )
    _index("prison_terminals", "prison_id")
    op.create_table(
        "prison_staff",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("prison_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["prison_id"], ["prisons.id"], name=op.f("fk_prison_staff_prison_id_prisons")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_prison_staff_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "prison_id", name=op.f("pk_prison_staff")),
    )
    op.create_table(
        "inmates",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("prison_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["prison_id"], ["prisons.id"], name=op.f("fk_inmates_prison_id_prisons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inmates")),
    )
    _index("inmates", "prison_id")
    op.create_table(
        "relatives",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inmate_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("relationship", sa.String(length=32), nullable=False),
        sa.Column("id_number_hash", sa.String(length=64), nullable=False),
        sa.Column("id_last4", sa.String(length=4), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("photo_path", sa.String(length=255), nullable=False),
        sa.Column("proof_path", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("banned_until", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["inmate_id"], ["inmates.id"], name=op.f("fk_relatives_inmate_id_inmates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relatives")),
    )
    _index("relatives", "inmate_id", "id_number_hash")
    op.create_table(
        "visit_points",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["street_id"],
            ["jurisdictions.id"],
            name=op.f("fk_visit_points_street_id_jurisdictions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_points")),
    )
    _index("visit_points", "street_id")
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prison_id", sa.String(length=32), nullable=False),
        sa.Column("inmate_id", sa.String(length=32), nullable=False),
        sa.Column("visit_point_id", sa.String(length=32), nullable=True),
        sa.Column("terminal_id", sa.String(length=32), nullable=False),
        sa.Column("starts_at", _TZ, nullable=False),
        sa.Column("ends_at", _TZ, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("privileged", sa.Boolean(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("booked_by", sa.String(length=96), nullable=False),
        sa.Column("approved_by", sa.String(length=96), nullable=False),
        sa.Column("second_approved_by", sa.String(length=96), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("live_at", _TZ, nullable=True),
        sa.Column("ended_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["inmate_id"], ["inmates.id"], name=op.f("fk_visits_inmate_id_inmates")
        ),
        sa.ForeignKeyConstraint(
            ["prison_id"], ["prisons.id"], name=op.f("fk_visits_prison_id_prisons")
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["prison_terminals.id"],
            name=op.f("fk_visits_terminal_id_prison_terminals"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_point_id"],
            ["visit_points.id"],
            name=op.f("fk_visits_visit_point_id_visit_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    _index(
        "visits",
        "prison_id",
        "inmate_id",
        "visit_point_id",
        "terminal_id",
        "starts_at",
        "month",
        "state",
    )
    op.create_table(
        "visit_parties",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("relative_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("valid_from", _TZ, nullable=True),
        sa.Column("valid_until", _TZ, nullable=True),
        sa.Column("used_at", _TZ, nullable=True),
        sa.Column("guest_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["relative_id"], ["relatives.id"], name=op.f("fk_visit_parties_relative_id_relatives")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_parties_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_parties")),
        sa.UniqueConstraint("guest_hash", name=op.f("uq_visit_parties_guest_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_visit_parties_token_hash")),
    )
    _index("visit_parties", "visit_id", "relative_id", "code_hash")
    op.create_table(
        "visit_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_items_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_items")),
    )
    _index("visit_items", "visit_id")


def downgrade() -> None:
    for table in (
        "visit_items",
        "visit_parties",
        "visits",
        "visit_points",
        "relatives",
        "inmates",
        "prison_staff",
        "prison_terminals",
        "prisons",
    ):
        op.drop_table(table)
