"""priors: each job's search for the patient's earlier studies, and the priors it compares with

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from radassist.db.base import UTCDateTime

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "prior_searches",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=True),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("elapsed_seconds", sa.Float(), nullable=False),
        sa.Column("sources_tried", JSON, nullable=False),
        sa.Column("searched_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_prior_searches_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_prior_searches")),
    )
    op.create_table(
        "job_priors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("prior_study_id", sa.Uuid(), nullable=True),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("study_description", sa.String(length=64), nullable=True),
        sa.Column("modalities", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("sop_instance_uids", JSON, nullable=False),
        sa.Column("report_text", sa.Text(), nullable=True),
        sa.Column("report_origin", sa.String(length=8), nullable=True),
        sa.Column("report_status", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_priors_job_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["prior_study_id"], ["studies.id"], name=op.f("fk_job_priors_prior_study_id_studies"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_priors")),
        sa.UniqueConstraint("job_id", "rank", name="uq_job_priors_job_rank"),
    )
    with op.batch_alter_table("job_priors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_priors_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_priors_prior_study_id"), ["prior_study_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_priors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_priors_prior_study_id"))
        batch_op.drop_index(batch_op.f("ix_job_priors_job_id"))
    op.drop_table("job_priors")
    op.drop_table("prior_searches")
