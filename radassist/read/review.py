"""What a reviewer reads: the review queue (held drafts first, then recent drafts nobody rated yet),
and on the study page, the safety warnings of a draft with each check's explanation and the
verdicts given on it.

The warnings are read as the gate stored them with the draft (check, policy, message); the
explanations are the checks' own (:data:`radassist.safety.EXPLANATIONS`).  No row carries a patient
name, ID, birth date or accession number.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from radassist.db.tables import Draft, DraftVerdict, Job, Study
from radassist.safety import EXPLANATIONS
from radassist.safety.gate import applied_warnings, column_checks
from radassist.states import JobState

RATED_STATES = (JobState.DRAFTED, JobState.DELIVERING, JobState.DONE, JobState.FAILED)
"""Jobs whose draft is out (or on its way) and may be rated; a held one is reviewed first."""


@dataclass(frozen=True, slots=True)
class ReviewWarning:
    """One warning of the safety gate, with the policy that applied and what the check means."""

    check: str
    policy: str
    message: str
    explanation: str


@dataclass(frozen=True, slots=True)
class VerdictRow:
    user_name: str
    verdict: str
    reasons: tuple[str, ...]
    corrected_text: str | None
    seconds_spent: float | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ReviewView:
    """The study page's review part: the latest draft's warnings, whether it is held, its verdicts."""

    job_id: uuid.UUID
    held: bool
    warnings: tuple[ReviewWarning, ...]
    verdicts: tuple[VerdictRow, ...]
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """One draft in the review queue."""

    study_id: uuid.UUID
    job_id: uuid.UUID
    job_state: JobState
    held: bool
    modality: str | None
    study_description: str | None
    profile: str | None
    model_name: str
    drafted_at: dt.datetime
    warnings: tuple[str, ...]
    """The checks that fired."""


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    modality: str | None = None
    profile: str | None = None
    model: str | None = None


def review_warnings(stored: object) -> tuple[ReviewWarning, ...]:
    """The gate's warnings as stored with a draft, each with its check's explanation."""
    values = stored if isinstance(stored, list) else []
    return tuple(ReviewWarning(w.check.value, w.policy, w.message, EXPLANATIONS[w.check])
                 for w in applied_warnings(values))


def _verdicts(session: Session, draft_id: uuid.UUID) -> tuple[VerdictRow, ...]:
    rows = session.execute(
        select(DraftVerdict.user_name, DraftVerdict.verdict, DraftVerdict.reasons, DraftVerdict.corrected_text,
               DraftVerdict.seconds_spent, DraftVerdict.created_at)
        .where(DraftVerdict.draft_id == draft_id).order_by(DraftVerdict.created_at)
    ).all()
    return tuple(VerdictRow(r.user_name, r.verdict.value, tuple(str(x) for x in r.reasons or ()), r.corrected_text,
                            r.seconds_spent, r.created_at) for r in rows)


def review_view(session: Session, draft_id: uuid.UUID | None) -> ReviewView | None:
    """The review part of the study page for the latest job's draft; None when there is no draft."""
    if draft_id is None:
        return None
    row = session.execute(
        select(Draft.job_id, Draft.warnings, Draft.profile, Job.state).join(Job, Job.id == Draft.job_id)
        .where(Draft.id == draft_id)
    ).one_or_none()
    if row is None:
        return None
    return ReviewView(job_id=row.job_id, held=row.state is JobState.NEEDS_REVIEW,
                      warnings=review_warnings(row.warnings), verdicts=_verdicts(session, draft_id),
                      profile=row.profile)


def _queue_query(where: ReviewFilter) -> Select[*tuple[Any, ...]]:
    stmt: Select[*tuple[Any, ...]] = (
        select(Study.id.label("study_id"), Job.id.label("job_id"), Job.state.label("job_state"), Study.modality,
               Study.study_description, Draft.profile, Draft.model_name, Draft.created_at.label("drafted_at"),
               Draft.warning_checks)
        .select_from(Draft).join(Job, Job.id == Draft.job_id).join(Study, Study.id == Job.study_id)
    )
    if where.modality:
        stmt = stmt.where(Study.modality == where.modality.strip().upper())
    if where.profile:
        stmt = stmt.where(Draft.profile == where.profile.strip())
    if where.model:
        stmt = stmt.where(Draft.model_name == where.model.strip())
    return stmt


def review_queue(session: Session, where: ReviewFilter | None = None, limit: int = 50) -> list[ReviewRow]:
    """Held drafts, longest waiting first; then the most recent drafts without any verdict."""
    where = where or ReviewFilter()
    base = _queue_query(where)
    held = session.execute(base.where(Job.state == JobState.NEEDS_REVIEW).order_by(Draft.created_at).limit(limit)).all()
    unrated_condition = and_(Job.state.in_(RATED_STATES),
                             ~select(DraftVerdict.id).where(DraftVerdict.draft_id == Draft.id).exists())
    room = max(0, limit - len(held))
    unrated = session.execute(
        base.where(unrated_condition).order_by(Draft.created_at.desc(), Draft.id.desc()).limit(room)
    ).all() if room else []
    return [ReviewRow(study_id=r.study_id, job_id=r.job_id, job_state=r.job_state,
                      held=r.job_state is JobState.NEEDS_REVIEW, modality=r.modality,
                      study_description=r.study_description, profile=r.profile, model_name=r.model_name,
                      drafted_at=r.drafted_at, warnings=column_checks(r.warning_checks))
            for r in [*held, *unrated]]


def filter_choices(session: Session) -> dict[str, list[str]]:
    """The values each filter of the queue can take (those present among the drafts)."""
    def distinct(column: object) -> list[str]:
        values = session.scalars(select(column).select_from(Draft).join(Job).join(Study).distinct()).all()  # type: ignore[call-overload]
        return sorted(str(v) for v in values if v)

    return {"modality": distinct(Study.modality), "profile": distinct(Draft.profile),
            "model": distinct(Draft.model_name)}
