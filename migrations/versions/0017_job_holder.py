"""job holder: the worker that claimed a job, so that worker's restart hands its jobs back at once

``jobs.held_by`` is the Celery node name (``name@host``) of the worker that last claimed the job for
preparing or drafting.  A worker that starts again under the same name holds nothing yet, so any
job still preparing or drafting under its name lost its holder in the crash, and is handed back
then, instead of after the time limit the sweep waits for.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("held_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("held_by")
