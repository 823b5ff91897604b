"""The prepare stage's writes (cpu queue): a queued job is claimed, prepared, and handed to the model.

``queued -> preparing`` (compare-and-set, ``started_at`` set: the claim's fence), then, once the
job's inputs are in the prepared store, ``preparing -> prepared`` only if that claim still holds;
the draft task is sent only after that commit.  A worker killed mid-preparation leaves the job
``preparing``: its redelivered message takes it over (a new ``started_at``, so the old holder's
late hand-over writes nothing), and the sweep hands back a job preparing past the time limit
(:mod:`radassist.drafting.recover`).  Preparing never touches ``attempts``: that counts the model's
claims (:mod:`radassist.drafting.record`).  Each function works in the caller's session; the
caller commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.tables import Job
from radassist.db.transitions import set_job_state, stat_waiting
from radassist.drafting.claim import ClaimedJob, read_claimed
from radassist.errors import RadAssistError
from radassist.events import EventTag, record_event
from radassist.metrics import JOBS_FINISHED
from radassist.states import JobState

logger = logging.getLogger(__name__)


def claim_for_preparing(session: Session, job_id: uuid.UUID, settings: Settings, now: dt.datetime, *,
                        takeover: bool = False) -> ClaimedJob | None:
    """Claim a queued job (or, after a redelivery, take over one left preparing); None when it is
    in neither state any more.  The claim carries the study's stored paths."""
    claimed = set_job_state(session, job_id, JobState.QUEUED, JobState.PREPARING, started_at=now)
    if not claimed and takeover and set_job_state(session, job_id, JobState.PREPARING, JobState.QUEUED):
        claimed = set_job_state(session, job_id, JobState.QUEUED, JobState.PREPARING, started_at=now)
        if claimed:
            logger.warning("took over a job from a worker that died while preparing it")
    if not claimed:
        return None
    jobs = read_claimed(session, [job_id], settings, paths=True)
    if not jobs:
        return None
    record_event(session, EventTag.PREPARE_STARTED, study_id=jobs[0].study_id, job_id=job_id)
    return jobs[0]


def hand_to_model(session: Session, claimed: ClaimedJob, pictures: int) -> bool:
    """``preparing -> prepared`` while the claim holds; False (nothing written) when it is gone."""
    if not set_job_state(session, claimed.job_id, JobState.PREPARING, JobState.PREPARED,
                         Job.started_at == claimed.started_at, error_code=None, error_message=None):
        logger.info("job left preparing or was taken over while it was prepared; nothing handed on")
        return False
    record_event(session, EventTag.PREPARE_COMPLETED, study_id=claimed.study_id, job_id=claimed.job_id,
                 pictures=pictures)
    return True


def hand_back(session: Session, claimed: ClaimedJob, error: RadAssistError) -> bool:
    """``preparing -> queued`` (to be prepared again later) while the claim holds."""
    if not set_job_state(session, claimed.job_id, JobState.PREPARING, JobState.QUEUED,
                         Job.started_at == claimed.started_at, error_code=error.code,
                         error_message=error.message[:2000]):
        return False
    record_event(session, EventTag.JOB_REQUEUED, study_id=claimed.study_id, job_id=claimed.job_id, code=error.code)
    logger.warning("preparing hit a transient failure (%s); job queued again", error.code)
    return True


def fail_preparing(session: Session, claimed: ClaimedJob, error: RadAssistError, now: dt.datetime) -> bool:
    """Fail a job being prepared, with the reason, while the claim holds."""
    if not set_job_state(session, claimed.job_id, JobState.PREPARING, JobState.FAILED,
                         Job.started_at == claimed.started_at, error_code=error.code,
                         error_message=error.message[:2000], finished_at=now):
        return False
    record_event(session, EventTag.JOB_FAILED, study_id=claimed.study_id, job_id=claimed.job_id, code=error.code)
    JOBS_FINISHED.labels(state=str(JobState.FAILED)).inc()
    logger.warning("job failed: %s", error.code)
    return True


def stat_queued(session: Session, other_than: uuid.UUID) -> list[uuid.UUID]:
    """STAT jobs queued for preparing, oldest first (see :func:`radassist.db.transitions.stat_waiting`)."""
    return stat_waiting(session, JobState.QUEUED, Job.created_at, other_than)
