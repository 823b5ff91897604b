"""identity and retention: keyed patient hashes on studies and instances; when a study's files were removed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from radassist.db.base import UTCDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("files_removed_at", UTCDateTime(), nullable=True))
        batch_op.create_index("ix_studies_files_removed_at_state", ["files_removed_at", "state"], unique=False)
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_key", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("patient_key")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index("ix_studies_files_removed_at_state")
        batch_op.drop_column("files_removed_at")
        batch_op.drop_column("patient_key")
