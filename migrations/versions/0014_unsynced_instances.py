"""unsynced instances: rows committed before the one flush that makes their files durable

With ``[storage] sync`` choosing one ``syncfs`` per group of instances on SQLite, each instance's
rows are committed before its file is flushed; the listing lets the start-up check find the files a
power cut did not keep (radassist/intake/unsynced.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unsynced_instances",
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("crc32", sa.BigInteger(), nullable=False),
        sa.Column("writer", sa.String(length=32), nullable=False),
        sa.Column("batch", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], name=op.f("fk_unsynced_instances_instance_id_instances"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_unsynced_instances")),
    )
    op.create_index("ix_unsynced_instances_writer_batch", "unsynced_instances", ["writer", "batch"])


def downgrade() -> None:
    op.drop_index("ix_unsynced_instances_writer_batch", table_name="unsynced_instances")
    op.drop_table("unsynced_instances")
