"""What the priors stage found for a job: the search's outcome, and each prior the draft compares with.

A prior's images are stored and recorded like received instances, in a study row of its own in
state ``prior`` (:class:`~radassist.states.StudyState`); these rows say which job used which prior
study, and hold what the draft, the SR and the ORU say of it.  The prior report's text is kept here
because the prompt is built from it (like the draft's own text, it never reaches a log).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, JSONVariant, utcnow


class PriorSearch(Base):
    """One job's search for priors: what it found (:class:`JobPrior` rows) or why it found none."""

    __tablename__ = "prior_searches"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    profile: Mapped[str | None] = mapped_column(String(64))
    """The prompt profile whose ``[[priors.rules]]`` rule chose the priors."""
    reason_code: Mapped[str | None] = mapped_column(String(64))
    """None when the search ran to its end and found priors; else a key of ``radassist.priors.REASONS``."""
    reason: Mapped[str] = mapped_column(String(200), default="")
    """The reason in plain words, as the study page, the SR and the ORU say it."""
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    sources_tried: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    """The ``[[prior_sources]]`` names asked, in order."""
    searched_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<PriorSearch job={self.job_id} {self.reason_code}>"


class JobPrior(Base):
    """One prior study a job compares with (``rank`` 0 is the newest)."""

    __tablename__ = "job_priors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    prior_study_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    """The study row its images were recorded in; None when none of them was stored."""
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    study_date: Mapped[dt.date | None] = mapped_column(Date)
    study_description: Mapped[str | None] = mapped_column(String(64))
    modalities: Mapped[str | None] = mapped_column(String(64))
    """The prior's modalities, separated by spaces (``DX``, ``CR DX``)."""
    source: Mapped[str] = mapped_column(String(64))
    """The ``[[prior_sources]]`` name it came from."""
    sop_instance_uids: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    """The images fetched (or moved to our listener) for the comparison."""
    report_text: Mapped[str | None] = mapped_column(Text)
    report_origin: Mapped[str | None] = mapped_column(String(8))
    """``ris`` (the RIS's signed report) or ``sr`` (a verified SR of the prior study)."""
    report_status: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("job_id", "rank", name="uq_job_priors_job_rank"),)

    def __repr__(self) -> str:
        return f"<JobPrior {self.id} job={self.job_id} rank={self.rank}>"


__all__ = ["JobPrior", "PriorSearch"]
