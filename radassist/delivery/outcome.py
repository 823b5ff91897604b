"""What one delivery attempt leaves behind, and when a job is over.

An attempt ends delivered, or pending again with a backoff (a transient failure before the
policy's maximum age, :mod:`radassist.delivery.retry`), or failed for good.  A job is over once
every one of its deliveries is final (a held one is not: it waits for an admin): done when each
arrived or was cancelled by an admin (a held output deliberately not sent), failed otherwise, with
the failed deliveries' reasons.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import DeliverySettings
from radassist.db.tables import Delivery, Job
from radassist.db.transitions import set_delivery_state, set_job_state
from radassist.delivery.retry import backoff_seconds, expired
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.events import EventTag, record_event
from radassist.metrics import DELIVERIES, JOBS_FINISHED, observe_delivery, observe_stage
from radassist.states import FINAL_DELIVERY_STATES, DeliveryState, JobState

logger = logging.getLogger(__name__)


def finish_job_if_delivered(session: Session, job_id: uuid.UUID, study_id: uuid.UUID, now: dt.datetime) -> bool:
    """Close a delivering job once every delivery is final: done if each arrived or was cancelled (or it has
    none), failed otherwise; whether this call closed it.

    The job's row is locked first.  Two deliveries of one job settled at once (its SR and its ORU, on
    two io threads) would otherwise each read the other as still sending, under PostgreSQL's read
    committed, and neither would close the job: it would stay ``delivering`` with everything
    delivered.  With the lock the second waits for the first's commit, then reads both settled.
    """
    session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
    rows = session.execute(
        select(Delivery.state, Delivery.channel, Delivery.destination, Delivery.last_error_code,
               Delivery.last_error_message).where(Delivery.job_id == job_id)
    ).all()
    if any(state not in FINAL_DELIVERY_STATES for state, *_ in rows):
        return False
    failed = [r for r in rows if r.state is DeliveryState.FAILED]
    if not failed:
        if not set_job_state(session, job_id, JobState.DELIVERING, JobState.DONE, finished_at=now):
            return False
        cancelled = sum(r.state is DeliveryState.CANCELLED for r in rows)
        record_event(session, EventTag.JOB_DONE, study_id=study_id, job_id=job_id, deliveries=len(rows),
                     **({"cancelled": cancelled} if cancelled else {}))
        _count_finished(session, job_id, JobState.DONE)
        return True
    code = failed[0].last_error_code or "delivery.failed"
    message = "; ".join(f"{r.channel} to {r.destination}: {r.last_error_message or r.state}" for r in failed)
    if not set_job_state(session, job_id, JobState.DELIVERING, JobState.FAILED,
                         finished_at=now, error_code=code, error_message=message[:2000]):
        return False
    record_event(session, EventTag.JOB_FAILED, study_id=study_id, job_id=job_id, code=code)
    _count_finished(session, job_id, JobState.FAILED)
    return True


def _count_finished(session: Session, job_id: uuid.UUID, state: JobState) -> None:
    JOBS_FINISHED.labels(state=str(state)).inc()
    row = session.execute(select(Job.created_at, Job.drafted_at, Job.finished_at).where(Job.id == job_id)).one_or_none()
    if row is not None and row.drafted_at is not None and row.finished_at is not None:
        observe_stage("delivering", (row.finished_at - row.drafted_at).total_seconds())
        observe_stage("total", (row.finished_at - row.created_at).total_seconds())


def _delivered(session: Session, delivery: Delivery, job: Job, now: dt.datetime, detail: dict[str, object]) -> None:
    set_delivery_state(session, delivery.id, DeliveryState.SENDING, DeliveryState.DELIVERED,
                       delivered_at=now, last_error_code=None, last_error_message=None)
    record_event(session, EventTag.DELIVERY_SENT, study_id=job.study_id, job_id=job.id, **detail)
    DELIVERIES.labels(channel=str(delivery.channel), outcome="delivered").inc()
    logger.info("%s delivered to %s (attempt %d)", delivery.channel, delivery.destination, delivery.attempts)


def _retry_later(session: Session, delivery: Delivery, job: Job, error: RadAssistError, retry_in: float,
                 now: dt.datetime, detail: dict[str, object]) -> None:
    set_delivery_state(session, delivery.id, DeliveryState.SENDING, DeliveryState.PENDING,
                       next_attempt_at=now + dt.timedelta(seconds=retry_in),
                       last_error_code=error.code, last_error_message=error.message[:2000])
    record_event(session, EventTag.DELIVERY_RETRY, study_id=job.study_id, job_id=job.id,
                 code=error.code, retry_in_s=retry_in, **detail)
    DELIVERIES.labels(channel=str(delivery.channel), outcome="retry").inc()
    logger.warning("%s to %s failed (%s); retry in %.0f s", delivery.channel, delivery.destination, error.code, retry_in)


def _failed(session: Session, delivery: Delivery, job: Job, error: RadAssistError, detail: dict[str, object]) -> None:
    if isinstance(error, TransientFailure):
        error = PermanentFailure(f"gave up after {delivery.attempts} attempts: {error.message}", code=error.code)
    set_delivery_state(session, delivery.id, DeliveryState.SENDING, DeliveryState.FAILED,
                       last_error_code=error.code, last_error_message=error.message[:2000])
    record_event(session, EventTag.DELIVERY_FAILED, study_id=job.study_id, job_id=job.id, code=error.code, **detail)
    DELIVERIES.labels(channel=str(delivery.channel), outcome="failed").inc()
    logger.warning("%s to %s failed for good (%s)", delivery.channel, delivery.destination, error.code)


def record_outcome(
    session: Session, delivery: Delivery, job: Job, error: RadAssistError | None, policy: DeliverySettings,
    now: dt.datetime,
) -> float | None:
    """Record one attempt's outcome and close the job when it was the last; the caller commits.

    Returns the seconds until the next attempt when the delivery is to be retried, else None.
    """
    detail: dict[str, object] = {"channel": str(delivery.channel), "destination": delivery.destination,
                                 "attempt": delivery.attempts}
    since_first = (now - delivery.first_attempt_at).total_seconds() if delivery.first_attempt_at else None
    retry_in: float | None = None
    if error is None:
        _delivered(session, delivery, job, now, detail)
        observe_delivery(str(delivery.channel), "delivered", since_first)
    elif isinstance(error, TransientFailure) and not expired(delivery.first_attempt_at or now, now, policy):
        retry_in = backoff_seconds(delivery.attempts, policy)
        _retry_later(session, delivery, job, error, retry_in, now, detail)
    else:
        _failed(session, delivery, job, error, detail)
        observe_delivery(str(delivery.channel), "failed", since_first)
    session.flush()
    finish_job_if_delivered(session, job.id, job.study_id, now)
    return retry_in
