"""quality: each draft measured against the signed final report (draft_measurements); shadow jobs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from radassist.db.base import UTCDateTime

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shadow", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "draft_measurements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("draft_id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("study_id", sa.Uuid(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("drafted_at", UTCDateTime(), nullable=False),
        sa.Column("report_received_at", UTCDateTime(), nullable=False),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("model_revision", sa.String(length=64), nullable=True),
        sa.Column("prompt_version", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("calling_ae_title", sa.String(length=16), nullable=True),
        sa.Column("patient_sex", sa.String(length=1), nullable=True),
        sa.Column("age_band", sa.String(length=8), nullable=True),
        sa.Column("labeler", sa.String(length=16), nullable=True),
        sa.Column("vocabulary", sa.String(length=64), nullable=True),
        sa.Column("edit_rate", sa.Float(), nullable=True),
        sa.Column("rouge_l", sa.Float(), nullable=True),
        sa.Column("bleu4", sa.Float(), nullable=True),
        sa.Column("chrf", sa.Float(), nullable=True),
        sa.Column("finding_f1", sa.Float(), nullable=True),
        sa.Column("finding_agreement", sa.Float(), nullable=True),
        sa.Column("critical_miss", sa.Boolean(), nullable=True),
        sa.Column("laterality_swap", sa.Boolean(), nullable=True),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["draft_id"], ["drafts.id"], name=op.f("fk_draft_measurements_draft_id_drafts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_draft_measurements_job_id_jobs"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_draft_measurements_report_id_reports"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_draft_measurements_study_id_studies"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draft_measurements")),
        sa.UniqueConstraint("draft_id", "report_id", name="uq_draft_measurements_draft_report"),
    )
    with op.batch_alter_table("draft_measurements", schema=None) as batch_op:
        batch_op.create_index("ix_draft_measurements_current_drafted_at", ["current", "drafted_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_draft_measurements_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_draft_measurements_report_id"), ["report_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_draft_measurements_study_id"), ["study_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("draft_measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_draft_measurements_study_id"))
        batch_op.drop_index(batch_op.f("ix_draft_measurements_report_id"))
        batch_op.drop_index(batch_op.f("ix_draft_measurements_job_id"))
        batch_op.drop_index("ix_draft_measurements_current_drafted_at")
    op.drop_table("draft_measurements")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("shadow")
