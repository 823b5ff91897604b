"""The study page's comparison: which priors the latest job found and compared with, or why none.

What the radiologist sees beside the draft: each prior's date, description and modality, where it
came from, its report (the RIS's signed text or a verified SR's) and the prior images the model was
shown; or, when there is none, the reason in plain words (the source was down, did not answer in
time, held nothing relevant...).  None for a job whose priors were never searched.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Draft, JobPrior, PriorSearch


@dataclass(frozen=True, slots=True)
class PriorRow:
    """One prior the job compared with, newest first."""

    study_instance_uid: str
    prior_study_id: uuid.UUID | None
    """Its study row (for the thumbnails of its stored images)."""
    study_date: dt.date | None
    study_description: str | None
    modalities: str | None
    source: str
    images_fetched: int
    report_origin: str | None
    """``ris``: the RIS's signed report; ``sr``: a verified SR of the prior study; None: no report found."""
    report_text: str | None
    shown_sop_instance_uids: tuple[str, ...] = ()
    """Its images the model was shown (the newest prior only, with a profile that shows prior images)."""


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """The latest job's search for priors."""

    searched_at: dt.datetime
    reason_code: str | None
    reason: str
    elapsed_seconds: float
    sources_tried: tuple[str, ...]
    profile: str | None
    priors: tuple[PriorRow, ...] = ()


def comparison_row(session: Session, job_id: uuid.UUID | None) -> ComparisonRow | None:
    """What the job's search for priors found, or None when it never searched."""
    if job_id is None:
        return None
    search = session.get(PriorSearch, job_id)
    if search is None:
        return None
    generation = session.scalar(select(Draft.generation).where(Draft.job_id == job_id)) or {}
    shown = {str(u) for u in generation.get("prior_sop_instance_uids") or ()}
    rows = session.scalars(select(JobPrior).where(JobPrior.job_id == job_id).order_by(JobPrior.rank)).all()
    priors = tuple(
        PriorRow(
            study_instance_uid=row.study_instance_uid, prior_study_id=row.prior_study_id, study_date=row.study_date,
            study_description=row.study_description, modalities=row.modalities, source=row.source,
            images_fetched=len(row.sop_instance_uids or ()), report_origin=row.report_origin,
            report_text=row.report_text,
            shown_sop_instance_uids=tuple(str(u) for u in row.sop_instance_uids or () if str(u) in shown),
        )
        for row in rows
    )
    return ComparisonRow(
        searched_at=search.searched_at, reason_code=search.reason_code, reason=search.reason,
        elapsed_seconds=search.elapsed_seconds, sources_tried=tuple(search.sources_tried or ()),
        profile=search.profile, priors=priors,
    )
