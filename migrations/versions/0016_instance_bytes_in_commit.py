"""instance bytes in the commit: a small instance's bytes are listed with it until its file is flushed

``unsynced_instances.data`` holds the bytes of an instance that was made durable in its own commit
(the database's log) rather than by the flush of its file (``[storage] in_commit_max_bytes``).  The
listing lasts until the listener's background flush has made the file durable, a tenth of a second;
a file that a power cut took first is rewritten from these bytes at the next start.  Downgrade
after a clean stop of the listener (it unlists everything it flushed), or the listed instances
whose files a crash took are undone, not rewritten.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("unsynced_instances", sa.Column("data", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unsynced_instances") as batch_op:
        batch_op.drop_column("data")
