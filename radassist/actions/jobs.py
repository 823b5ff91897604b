"""The admin's actions on jobs and deliveries: retry a failed one, cancel one in progress.

Each is a compare-and-set plus an audit row in one transaction (:mod:`radassist.actions.outcome`).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from radassist.actions.outcome import IN_PROGRESS, ActionResult, Dispatch, done, refused
from radassist.broker import DELIVER_TASK, PREPARE_TASK
from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Draft, Job
from radassist.db.transitions import set_delivery_state, set_job_state
from radassist.events import EventTag, record_event
from radassist.states import DeliveryState, JobState


def _requeue_delivery(session: Session, delivery: Delivery, now: dt.datetime) -> bool:
    return set_delivery_state(
        session, delivery.id, (DeliveryState.FAILED, DeliveryState.CANCELLED), DeliveryState.PENDING,
        next_attempt_at=now, first_attempt_at=None, last_error_code=None, last_error_message=None,
    )


def _reopen_job_for_delivery(session: Session, job_id: uuid.UUID) -> None:
    """A job failed (or cancelled) only by its deliveries goes back to delivering."""
    set_job_state(session, job_id, (JobState.FAILED, JobState.CANCELLED), JobState.DELIVERING,
                  Job.drafted_at.is_not(None), finished_at=None, error_code=None, error_message=None)


def retry_delivery(session: Session, delivery_id: uuid.UUID, user: str) -> ActionResult:
    """A failed (or cancelled) delivery is due again now; its job returns to delivering."""
    target = str(delivery_id)
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return refused(session, user, "retry_delivery", target, "no such delivery")
    now = utcnow()
    if not _requeue_delivery(session, delivery, now):
        return refused(session, user, "retry_delivery", target, f"delivery is {delivery.state.value}, not failed")
    job = session.get(Job, delivery.job_id)
    assert job is not None
    _reopen_job_for_delivery(session, job.id)
    record_event(session, EventTag.DELIVERY_REQUEUED, study_id=job.study_id, job_id=job.id,
                 channel=str(delivery.channel), destination=delivery.destination, by="admin")
    return done(session, user, "retry_delivery", target, f"{delivery.channel.value} to {delivery.destination} queued again",
                (Dispatch.of(DELIVER_TASK, target),), job_id=str(job.id))


def _retry_deliveries(session: Session, job: Job, user: str) -> ActionResult:
    """A job that failed in delivery (it has a draft): its failed deliveries again."""
    target = str(job.id)
    now = utcnow()
    failed = session.scalars(
        select(Delivery).where(Delivery.job_id == job.id,
                               Delivery.state.in_((DeliveryState.FAILED, DeliveryState.CANCELLED)))
    ).all()
    requeued = [d for d in failed if _requeue_delivery(session, d, now)]
    if not requeued:
        return refused(session, user, "retry_job", target, "the job has a draft and no failed delivery")
    _reopen_job_for_delivery(session, job.id)
    for d in requeued:
        record_event(session, EventTag.DELIVERY_REQUEUED, study_id=job.study_id, job_id=job.id,
                     channel=str(d.channel), destination=d.destination, by="admin")
    return done(session, user, "retry_job", target, f"{len(requeued)} deliveries queued again",
                tuple(Dispatch.of(DELIVER_TASK, str(d.id)) for d in requeued), mode="deliveries")


def retry_job(session: Session, job_id: uuid.UUID, user: str) -> ActionResult:
    """Failed in drafting: queued again.  Failed in delivery (it has a draft): its failed deliveries again."""
    target = str(job_id)
    job = session.get(Job, job_id)
    if job is None:
        return refused(session, user, "retry_job", target, "no such job")
    if job.state not in (JobState.FAILED, JobState.CANCELLED):
        return refused(session, user, "retry_job", target, f"job is {job.state.value}, not failed")
    if session.scalar(select(Draft.id).where(Draft.job_id == job_id)) is not None:
        return _retry_deliveries(session, job, user)
    if not set_job_state(session, job_id, (JobState.FAILED, JobState.CANCELLED), JobState.QUEUED,
                         error_code=None, error_message=None, started_at=None, finished_at=None):
        return refused(session, user, "retry_job", target, "job changed state meanwhile")
    record_event(session, EventTag.JOB_REQUEUED, study_id=job.study_id, job_id=job_id, by="admin")
    return done(session, user, "retry_job", target, "job queued again",
                (Dispatch.of(PREPARE_TASK, target),), mode="draft")


def cancel_job(session: Session, job_id: uuid.UUID, user: str) -> ActionResult:
    """Stop a job in progress, and its deliveries not yet delivered."""
    target = str(job_id)
    job = session.get(Job, job_id)
    if job is None:
        return refused(session, user, "cancel_job", target, "no such job")
    if not set_job_state(session, job_id, IN_PROGRESS, JobState.CANCELLED, finished_at=utcnow()):
        return refused(session, user, "cancel_job", target, f"job is {job.state.value}, not in progress")
    result = session.execute(
        update(Delivery)
        .where(Delivery.job_id == job_id,
               Delivery.state.in_((DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.HELD)))
        .values(state=DeliveryState.CANCELLED)
    )
    assert isinstance(result, CursorResult)
    record_event(session, EventTag.JOB_CANCELLED, study_id=job.study_id, job_id=job_id, by="admin",
                 deliveries_cancelled=result.rowcount)
    return done(session, user, "cancel_job", target, f"job cancelled ({result.rowcount} deliveries)")
