"""verdicts: a radiologist's verdict on a draft (useful as is / with edits / not useful, reasons, corrected text)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from radassist.db.base import UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "draft_verdicts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("draft_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("corrected_text", sa.Text(), nullable=True),
        sa.Column("seconds_spent", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["draft_id"], ["drafts.id"], name=op.f("fk_draft_verdicts_draft_id_drafts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_draft_verdicts_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draft_verdicts")),
        sa.UniqueConstraint("draft_id", "user_name", name="uq_draft_verdicts_draft_user"),
    )
    with op.batch_alter_table("draft_verdicts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_draft_verdicts_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_draft_verdicts_draft_id"), ["draft_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_draft_verdicts_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("draft_verdicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_draft_verdicts_job_id"))
        batch_op.drop_index(batch_op.f("ix_draft_verdicts_draft_id"))
        batch_op.drop_index(batch_op.f("ix_draft_verdicts_created_at"))
    op.drop_table("draft_verdicts")
