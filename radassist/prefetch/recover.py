"""Searches for priors whose worker or message was lost, found by the sweep and sent again.

A job waits in ``priors`` for at most the search's time limit plus the time its message waits in
the io queue.  One still there well past that (its worker died, or its message was lost while the
broker restarted) is sent again, and its clock restarted so that the next sweep does not send a
second copy.  Sending again is safe: the search's outcome is recorded only while the job is still
in ``priors`` (:mod:`radassist.prefetch.record`), and fetched images are stored idempotently.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.tables import Job
from radassist.events import EventTag, record_event
from radassist.states import JobState

LOST_SEARCH_GRACE_S = 120.0
"""Beyond the search's own time limit: how long a job may wait in ``priors`` before it is sent again."""
LOST_SEARCH_BATCH = 100


def hand_back_lost(session: Session, settings: Settings, now: dt.datetime) -> list[uuid.UUID]:
    """Jobs in ``priors`` past their time: their clocks restarted, their ids to send again (the caller
    sends them after its commit)."""
    cutoff = now - dt.timedelta(seconds=settings.priors.time_limit_seconds + LOST_SEARCH_GRACE_S)
    clock = func.coalesce(Job.started_at, Job.created_at)
    lost = session.execute(
        select(Job.id, Job.study_id).where(Job.state == JobState.PRIORS, clock < cutoff)
        .order_by(Job.created_at).limit(LOST_SEARCH_BATCH)
    ).all()
    handed_back = []
    for job_id, study_id in lost:
        restarted = session.execute(
            update(Job).where(Job.id == job_id, Job.state == JobState.PRIORS, clock < cutoff).values(started_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(restarted, "rowcount", 0) == 1:
            record_event(session, EventTag.JOB_REQUEUED, study_id=study_id, job_id=job_id,
                         reason="the search for priors lost its worker or message")
            handed_back.append(job_id)
    return handed_back
