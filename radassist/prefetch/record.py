"""What the priors stage writes: the start of a search, and its outcome with the job moved on to drafting.

The outcome is written only while the job is still in ``priors`` (compare-and-set to ``queued``):
a search run twice (a redelivered message, a search handed back by the sweep) records once, and
a job cancelled meanwhile records nothing.  A shadow job does not search: it waits for its study's
own job's search and gets a copy of its outcome, so the sources are asked once per study, and the
shadow is compared with the same priors.  The caller commits, and sends the draft task only after.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from radassist.db.tables import Job, JobPrior, PriorSearch, Study
from radassist.db.transitions import set_job_state
from radassist.events import EventTag, record_event
from radassist.imaging.context import NON_IMAGE_MODALITIES
from radassist.priors import PriorsResult, PriorStudy
from radassist.states import JobState, StudyState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartedSearch:
    """A job whose priors are being searched: its study, and the pipeline (called AE title) it serves."""

    job_id: uuid.UUID
    study_id: uuid.UUID
    called_ae_title: str


def start_search(session: Session, job_id: uuid.UUID, now: dt.datetime) -> StartedSearch | None:
    """Mark the search of a job still in ``priors`` as started now (the clock the sweep's recovery
    reads); None when the job has moved on."""
    study_id = session.execute(
        update(Job).where(Job.id == job_id, Job.state == JobState.PRIORS).values(started_at=now)
        .returning(Job.study_id).execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if study_id is None:
        return None
    called = session.scalar(select(Study.called_ae_title).where(Study.id == study_id))
    return StartedSearch(job_id, study_id, called or "")


def _prior_row(job_id: uuid.UUID, rank: int, prior: PriorStudy, study_id: uuid.UUID | None) -> JobPrior:
    report = prior.report
    # The images' modalities name the prior (ModalitiesInStudy also lists its SR reports).
    modalities = [m for m in prior.modalities if m not in NON_IMAGE_MODALITIES] or list(prior.modalities)
    return JobPrior(
        job_id=job_id, rank=rank, prior_study_id=study_id, study_instance_uid=prior.study_instance_uid,
        study_date=prior.study_date, study_description=prior.study_description[:64] or None,
        modalities=" ".join(modalities)[:64] or None, source=prior.source[:64],
        sop_instance_uids=list(prior.sop_instance_uids),
        report_text=report.text if report else None, report_origin=report.origin if report else None,
        report_status=report.status[:16] if report else None,
    )


def waits_for_its_study_job(session: Session, job_id: uuid.UUID) -> bool:
    """True for a shadow job whose study's own job, made with it, is still in ``priors``: the shadow
    takes that job's outcome when it is recorded (:func:`record_search`) instead of asking the
    sources a second time.  Should that job never record one (cancelled meanwhile), the sweep's
    hand-back sends the shadow's search again and it searches on its own."""
    job = session.execute(
        select(Job.study_id, Job.created_at, Job.shadow).where(Job.id == job_id, Job.state == JobState.PRIORS)
    ).one_or_none()
    if job is None or not job.shadow:
        return False
    return session.scalar(_made_together(job.study_id, job.created_at, shadow=False).limit(1)) is not None


def _made_together(study_id: uuid.UUID, created_at: dt.datetime, *, shadow: bool) -> Select[uuid.UUID]:
    """The study's jobs still in ``priors`` that the same claim made (one moment), shadow or not."""
    return select(Job.id).where(Job.study_id == study_id, Job.created_at == created_at,
                                Job.shadow.is_(shadow), Job.state == JobState.PRIORS)


def _waiting_shadows(session: Session, started: StartedSearch) -> list[uuid.UUID]:
    """The shadow jobs made with ``started``'s job, still in ``priors``."""
    job = session.execute(select(Job.created_at, Job.shadow).where(Job.id == started.job_id)).one()
    if job.shadow:
        return []
    return list(session.scalars(_made_together(started.study_id, job.created_at, shadow=True).order_by(Job.id)))


def record_search(
    session: Session, started: StartedSearch, result: PriorsResult, *, profile: str | None,
    study_ids: Mapping[str, uuid.UUID], now: dt.datetime,
) -> list[uuid.UUID]:
    """Store the search's outcome and queue the job for drafting, with the shadow jobs that waited
    for it (:func:`waits_for_its_study_job`); the ids of the jobs queued, none (nothing written)
    when the job is no longer in ``priors``."""
    if not _record_outcome(session, started.job_id, started, result, profile, study_ids, now):
        logger.info("job left the priors stage while its priors were searched; outcome discarded")
        return []
    queued = [started.job_id]
    for shadow_id in _waiting_shadows(session, started):
        if _record_outcome(session, shadow_id, started, result, profile, study_ids, now, shared=True):
            queued.append(shadow_id)
    logger.info("priors searched: %d found (%s); %d job(s) queued for drafting", len(result.priors),
                result.reason_code or "complete", len(queued))
    return queued


def _record_outcome(
    session: Session, job_id: uuid.UUID, started: StartedSearch, result: PriorsResult, profile: str | None,
    study_ids: Mapping[str, uuid.UUID], now: dt.datetime, *, shared: bool = False,
) -> bool:
    """``job_id``'s copy of the outcome, written while it is still in ``priors``; False otherwise.
    ``shared``: a shadow job's, from its study's own job's search."""
    if not set_job_state(session, job_id, JobState.PRIORS, JobState.QUEUED, started_at=now):
        return False
    session.add(PriorSearch(job_id=job_id, profile=profile, reason_code=result.reason_code,
                            reason=result.reason[:200], elapsed_seconds=round(result.elapsed_seconds, 3),
                            sources_tried=list(result.sources_tried), searched_at=now))
    for rank, prior in enumerate(result.priors):
        session.add(_prior_row(job_id, rank, prior, study_ids.get(prior.study_instance_uid)))
    used = [study_ids[p.study_instance_uid] for p in result.priors if p.study_instance_uid in study_ids]
    if used and not shared:  # retention's clock of a prior starts again whenever a job compares with it
        session.execute(update(Study).where(Study.id.in_(used), Study.state == StudyState.PRIOR)
                        .values(completed_at=now).execution_options(synchronize_session=False))
    details = {"shared_from": str(started.job_id)} if shared else {}
    record_event(session, EventTag.PRIORS_SEARCHED, study_id=started.study_id, job_id=job_id,
                 found=len(result.priors), code=result.reason_code, seconds=round(result.elapsed_seconds, 1),
                 sources=list(result.sources_tried), profile=profile, **details)
    return True
