"""worker presence: each worker reports in, so a silent worker's jobs are handed back within minutes

Before, a worker that never came back (its machine gone, or started again under another name) left
its jobs ``preparing`` or ``drafting`` until the sweep's cutoff, the job time limit and a minute
(31 min by default).  Now each worker writes ``seen_at`` every few seconds, and the sweep hands back
the jobs held (``jobs.held_by``) by a worker silent for ``[queue] worker_lost_after_seconds``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from radassist.db.base import UTCDateTime

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_presence",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("queues", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_presence")),
    )
    op.create_index(op.f("ix_worker_presence_seen_at"), "worker_presence", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_worker_presence_seen_at"), table_name="worker_presence")
    op.drop_table("worker_presence")
