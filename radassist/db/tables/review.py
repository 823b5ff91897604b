"""What the radiologist said of a draft: a verdict, the reasons, the corrected text, the time it took."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, JSONVariant, enum_column, utcnow


class Verdict(StrEnum):
    USEFUL_AS_IS = "useful_as_is"
    USEFUL_WITH_EDITS = "useful_with_edits"
    NOT_USEFUL = "not_useful"


class VerdictReason(StrEnum):
    WRONG_ANATOMY = "wrong_anatomy"
    WRONG_SIDE = "wrong_side"
    INVENTED_FINDING = "invented_finding"
    MISSED_FINDING = "missed_finding"
    WRONG_COMPARISON = "wrong_comparison"
    POOR_WORDING = "poor_wording"
    OTHER = "other"


class DraftVerdict(Base):
    """One radiologist's verdict on one draft; giving it again replaces it (one row per draft and user)."""

    __tablename__ = "draft_verdicts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    draft_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[Verdict] = mapped_column(enum_column(Verdict))
    reasons: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    """``VerdictReason`` values."""
    corrected_text: Mapped[str | None] = mapped_column(Text)
    """The radiologist's own wording of the report, when they gave one."""
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("draft_id", "user_name", name="uq_draft_verdicts_draft_user"),)

    def __repr__(self) -> str:
        return f"<DraftVerdict {self.id} {self.verdict}>"


__all__ = ["DraftVerdict", "Verdict", "VerdictReason"]
