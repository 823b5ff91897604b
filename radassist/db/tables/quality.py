"""How each draft compares with the signed final report of its study: one row per draft and report."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, JSONVariant, utcnow


class DraftMeasurement(Base):
    """A draft measured against one final or corrected report (:mod:`radassist.quality`).

    The slice columns say whose draft it was and of what (model, prompt, profile, modality, calling
    AE, sex, age band; never a name or an ID); the headline columns are what the Quality page filters
    and aggregates on; ``metrics`` holds every figure (``PairMetrics.to_dict``, no report text).
    ``current`` marks the measurement against the newest report of the study: a correction that
    arrives later is measured again and takes over.  A measurement that could not be made keeps its
    ``error_code`` and no figures, so it is not tried again at every sweep.
    """

    __tablename__ = "draft_measurements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    draft_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    current: Mapped[bool] = mapped_column(default=True)
    shadow: Mapped[bool] = mapped_column(default=False)
    """The draft came from a shadow model: measured, never delivered."""
    drafted_at: Mapped[dt.datetime]
    """When the draft was written: the time axis of the Quality page and of drift."""
    report_received_at: Mapped[dt.datetime]
    measured_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    model_name: Mapped[str] = mapped_column(String(256))
    model_revision: Mapped[str | None] = mapped_column(String(64))
    prompt_version: Mapped[str] = mapped_column(String(32))
    profile: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))
    calling_ae_title: Mapped[str | None] = mapped_column(String(16))
    patient_sex: Mapped[str | None] = mapped_column(String(1))
    age_band: Mapped[str | None] = mapped_column(String(8))
    labeler: Mapped[str | None] = mapped_column(String(16))
    vocabulary: Mapped[str | None] = mapped_column(String(64))
    edit_rate: Mapped[float | None] = mapped_column(Float)
    rouge_l: Mapped[float | None] = mapped_column(Float)
    bleu4: Mapped[float | None] = mapped_column(Float)
    chrf: Mapped[float | None] = mapped_column(Float)
    finding_f1: Mapped[float | None] = mapped_column(Float)
    finding_agreement: Mapped[float | None] = mapped_column(Float)
    critical_miss: Mapped[bool | None]
    laterality_swap: Mapped[bool | None]
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONVariant)
    error_code: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("draft_id", "report_id", name="uq_draft_measurements_draft_report"),
        Index("ix_draft_measurements_current_drafted_at", "current", "drafted_at"),
    )

    def __repr__(self) -> str:
        return f"<DraftMeasurement {self.id} draft={self.draft_id}>"


__all__ = ["DraftMeasurement"]
