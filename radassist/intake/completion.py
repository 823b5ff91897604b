"""Study completion: a study quiet for long enough is claimed, once, and gets a drafting job.

"Quiet for N seconds" is a property of time, not of any message, so it is found by a periodic
sweep rather than by the listener.  Several sweepers may run at once (one per scheduler or
listener host); each candidate is claimed with a compare-and-set ``UPDATE ... WHERE
state = 'receiving' AND last_received_at <= cutoff``, so exactly one of them wins, and an
instance arriving at the same moment (which moves ``last_received_at``) makes the claim miss.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from radassist.db.tables import Job, Study
from radassist.events import EventTag, record_event
from radassist.states import JobState, StudyState

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 200


def claim_complete_studies(
    session: Session,
    *,
    now: dt.datetime,
    quiet_seconds: float,
    model_name: str,
    limit: int = DEFAULT_BATCH,
) -> list[uuid.UUID]:
    """Move quiet ``receiving`` studies to ``complete`` and queue one job each; return the job ids.

    The caller commits (and only then hands the job ids to the broker).  On PostgreSQL the
    candidates are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent sweepers split the work
    instead of queueing behind each other, and a study whose row an intake transaction holds is
    left for the next sweep.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if quiet_seconds < 0:
        raise ValueError("quiet_seconds must not be negative")
    if not model_name:
        raise ValueError("model_name must not be empty")
    cutoff = now - dt.timedelta(seconds=quiet_seconds)

    candidates = (
        select(Study.id)
        .where(Study.state == StudyState.RECEIVING, Study.last_received_at <= cutoff)
        .order_by(Study.last_received_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    study_ids = list(session.scalars(candidates))

    job_ids: list[uuid.UUID] = []
    for study_id in study_ids:
        claimed = session.execute(
            update(Study)
            .where(
                Study.id == study_id,
                Study.state == StudyState.RECEIVING,
                Study.last_received_at <= cutoff,
            )
            .values(state=StudyState.COMPLETE, completed_at=now)
            .returning(Study.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if claimed is None:
            continue  # another sweeper won, or an instance just arrived
        job = Job(
            id=uuid.uuid4(), study_id=study_id, state=JobState.QUEUED, model_name=model_name, created_at=now
        )
        session.add(job)
        session.flush()
        record_event(session, EventTag.STUDY_COMPLETE, study_id=study_id, quiet_seconds=quiet_seconds)
        record_event(session, EventTag.JOB_QUEUED, study_id=study_id, job_id=job.id, model_name=model_name)
        job_ids.append(job.id)
    session.flush()
    if job_ids:
        logger.info("claimed %d complete studies", len(job_ids))
    return job_ids
