"""worker answering since: when each worker's unbroken run of reports began

After a database outage longer than ``[queue] worker_lost_after_seconds`` every worker looked silent
for the outage's length, and a sweep that ran in the second before they reported in again handed
their jobs back: drafted twice, stored once.  A worker's run of reports now restarts after a gap,
and the sweep hands back a silent worker's jobs only while another worker has reported without a
break for a heartbeat or more (the database answered all that time).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from radassist.db.base import UTCDateTime

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("worker_presence", sa.Column("answering_since", UTCDateTime(), nullable=True))
    op.execute("UPDATE worker_presence SET answering_since = started_at")
    with op.batch_alter_table("worker_presence") as batch_op:
        batch_op.alter_column("answering_since", existing_type=UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("worker_presence") as batch_op:
        batch_op.drop_column("answering_since")
