"""conversation: questions radiologists ask the model about a study's draft, and the answers

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-08

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from radassist.db.base import UTCDateTime

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversation_turns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("study_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("draft_id", sa.Uuid(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("model_name", sa.String(length=256), nullable=True),
        sa.Column("model_revision", sa.String(length=64), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("prompt_version", sa.String(length=32), nullable=True),
        sa.Column("turns_left_out", sa.Integer(), nullable=False),
        sa.Column("boxes", JSON, nullable=False),
        sa.Column("generation", JSON, nullable=False),
        sa.Column("asked_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("first_text_at", UTCDateTime(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_conversation_turns_study_id_studies"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_conversation_turns_job_id_jobs"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["draft_id"], ["drafts.id"], name=op.f("fk_conversation_turns_draft_id_drafts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_turns")),
        sa.UniqueConstraint("draft_id", "user_name", "number", name="uq_conversation_turns_draft_user_number"),
    )
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_turns_study_id"), ["study_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_turns_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_turns_draft_id"), ["draft_id"], unique=False)
        batch_op.create_index("ix_conversation_turns_state_asked_at", ["state", "asked_at"], unique=False)
        batch_op.create_index("ix_conversation_turns_user_name_asked_at", ["user_name", "asked_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_turns_user_name_asked_at")
        batch_op.drop_index("ix_conversation_turns_state_asked_at")
        batch_op.drop_index(batch_op.f("ix_conversation_turns_draft_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_turns_job_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_turns_study_id"))
    op.drop_table("conversation_turns")
