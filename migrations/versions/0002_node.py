"""node: associations log, listener status, jobs.supersedes_job_id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from radassist.db.base import UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "associations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("calling_ae_title", sa.String(length=16), nullable=False),
        sa.Column("called_ae_title", sa.String(length=16), nullable=False),
        sa.Column("peer_host", sa.String(length=64), nullable=False),
        sa.Column("peer_port", sa.Integer(), nullable=True),
        sa.Column("tls", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("instances_stored", sa.Integer(), nullable=False),
        sa.Column("instances_failed", sa.Integer(), nullable=False),
        sa.Column("bytes_stored", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_associations")),
    )
    with op.batch_alter_table("associations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_associations_started_at"), ["started_at"], unique=False)

    op.create_table(
        "node_status",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("accepting", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("free_bytes", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_node_status")),
    )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supersedes_job_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_jobs_supersedes_job_id_jobs", "jobs", ["supersedes_job_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_jobs_supersedes_job_id_jobs", type_="foreignkey")
        batch_op.drop_column("supersedes_job_id")
    op.drop_table("node_status")
    with op.batch_alter_table("associations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_associations_started_at"))
    op.drop_table("associations")
