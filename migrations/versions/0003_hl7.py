"""hl7: orders, signed reports and inbound messages from the RIS

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from radassist.db.base import UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("accession_number_hash", sa.String(length=16), nullable=False),
        sa.Column("placer_order_number", sa.String(length=200), nullable=True),
        sa.Column("placer_namespace", sa.String(length=64), nullable=True),
        sa.Column("filler_order_number", sa.String(length=200), nullable=True),
        sa.Column("filler_namespace", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("indication", sa.Text(), nullable=True),
        sa.Column("procedure_code", sa.String(length=64), nullable=True),
        sa.Column("procedure_text", sa.String(length=200), nullable=True),
        sa.Column("procedure_system", sa.String(length=32), nullable=True),
        sa.Column("order_control", sa.String(length=4), nullable=True),
        sa.Column("order_status", sa.String(length=4), nullable=True),
        sa.Column("control_id", sa.String(length=64), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("accession_number_hash", name=op.f("uq_orders_accession_number_hash")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_placer_order_number", ["placer_order_number"], unique=False)
        batch_op.create_index("ix_orders_filler_order_number", ["filler_order_number"], unique=False)

    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("accession_number_hash", sa.String(length=16), nullable=False),
        sa.Column("study_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.String(length=32), nullable=True),
        sa.Column("control_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_reports_order_id_orders"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name=op.f("fk_reports_study_id_studies"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("accession_number_hash", "control_id", name="uq_reports_accession_control_id"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reports_accession_number_hash"), ["accession_number_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reports_study_id"), ["study_id"], unique=False)

    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=True),
        sa.Column("control_id", sa.String(length=64), nullable=True),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("peer", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_messages_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_messages_received_at"))
    op.drop_table("inbound_messages")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_study_id"))
        batch_op.drop_index(batch_op.f("ix_reports_accession_number_hash"))
    op.drop_table("reports")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_filler_order_number")
        batch_op.drop_index("ix_orders_placer_order_number")
    op.drop_table("orders")
