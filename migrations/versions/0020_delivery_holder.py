"""delivery holder: the io worker that claimed a delivery, so its restart or its silence hands it back

A delivery left ``sending`` by an io worker killed mid-send waited for the sweep's cutoff, three ACK
timeouts and at least three minutes.  ``deliveries.held_by`` names the worker of its last claim
(its Celery node name, as ``jobs.held_by``): started again under that name it hands the delivery
back at once, and the sweep hands it back once that worker has been silent for
``[queue] worker_lost_after_seconds``.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("held_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("held_by")
