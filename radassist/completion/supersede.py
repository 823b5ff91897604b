"""A draft of a study that has since grown never goes out after the draft of the whole study.

A late instance reopens a complete study, and its next quiet time queues a new job
(:mod:`radassist.completion.claim`).  The earlier job may still be on its way: queued behind other
studies, handed back after a lost worker, retried after a transient failure, or held for review.
Left alone it would draft what the study was before, and it could reach the PACS and the RIS after
the new job's report, so the last ORU the RIS files for the accession would describe part of the
study.  So the new job cancels every earlier job of the study that has not started delivering
(``job.superseded``, with a ``job:cancelled`` event naming the new job).  A job already delivering
keeps going: its SR is out, or on its way, and the new SR names it as its predecessor.

The new job's predecessor is the newest earlier job whose SR may exist: a job cancelled here never
built one, so the new job takes over the predecessor it had.  Earlier shadow jobs not yet drafted are
cancelled too, as the claim queues shadow jobs of the whole study; a cancelled job's draft, where
one was stored, is not measured against the signed report (:mod:`radassist.measuring.find`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.base import utcnow
from radassist.db.tables import Job
from radassist.db.transitions import set_job_state
from radassist.events import EventTag, record_event
from radassist.states import JobState

logger = logging.getLogger(__name__)

SUPERSEDED_CODE = "job.superseded"

NOT_YET_DELIVERING: tuple[JobState, ...] = (
    JobState.PRIORS, JobState.QUEUED, JobState.PREPARING, JobState.PREPARED, JobState.DRAFTING,
    JobState.NEEDS_REVIEW, JobState.DRAFTED,
)
"""What an earlier job may be in and still be stopped before any of its outputs is built."""


def supersede_earlier_jobs(session: Session, newer: Job) -> list[uuid.UUID]:
    """Cancel ``newer``'s study's earlier (non-shadow) jobs that have not started delivering; their ids.

    Each is a compare-and-set, so a job that moved on to delivering meanwhile is left to finish, and a
    worker holding a cancelled job loses its own compare-and-set and stores nothing.
    """
    earlier = session.execute(
        select(Job.id, Job.supersedes_job_id).where(
            Job.study_id == newer.study_id, Job.id != newer.id, Job.shadow.is_(False),
            Job.state.in_(NOT_YET_DELIVERING),
        )
    ).all()
    cancelled: list[uuid.UUID] = []
    for job_id, its_predecessor in earlier:
        if _cancel(session, newer.study_id, job_id, newer.id):
            if newer.supersedes_job_id == job_id:
                newer.supersedes_job_id = its_predecessor
            cancelled.append(job_id)
    if cancelled:
        session.flush()
        logger.info("%d earlier job(s) of the study cancelled: it grew, and the new job drafts all of it",
                    len(cancelled))
    return cancelled


def supersede_earlier_shadows(session: Session, study_id: uuid.UUID, newer_id: uuid.UUID,
                              new_shadows: Collection[uuid.UUID]) -> list[uuid.UUID]:
    """Cancel the study's earlier shadow jobs not yet drafted (a shadow job is done with its draft); their ids.

    A shadow draft is never sent, but it is measured and compared with the live model's: drafted
    from part of the study, it would count against its model for what it was never shown.  The
    claim queues a shadow job of the whole study per shadow model (``new_shadows``) meanwhile.
    """
    earlier = session.scalars(
        select(Job.id).where(Job.study_id == study_id, Job.shadow.is_(True), Job.id.not_in(list(new_shadows)),
                             Job.state.in_(NOT_YET_DELIVERING))
    ).all()
    return [job_id for job_id in earlier if _cancel(session, study_id, job_id, newer_id)]


def _cancel(session: Session, study_id: uuid.UUID, job_id: uuid.UUID, newer_id: uuid.UUID) -> bool:
    if not set_job_state(session, job_id, NOT_YET_DELIVERING, JobState.CANCELLED, finished_at=utcnow(),
                         error_code=SUPERSEDED_CODE,
                         error_message="the study received more instances; a newer job drafts the whole study"):
        return False
    record_event(session, EventTag.JOB_CANCELLED, study_id=study_id, job_id=job_id,
                 reason=SUPERSEDED_CODE, superseded_by=str(newer_id))
    return True


__all__ = ["NOT_YET_DELIVERING", "SUPERSEDED_CODE", "supersede_earlier_jobs", "supersede_earlier_shadows"]
