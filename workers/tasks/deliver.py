"""Delivery (``io`` queue): one attempt at one outbox item, then delivered, retried later, or failed.

The attempt starts with a compare-and-set (pending and due -> sending), so a duplicated or early
message does nothing.  When the last delivery of a job is final, the job is done (or failed, with
the failed deliveries' reasons).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from celery import shared_task
from sqlalchemy import func, select

from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Job
from radassist.db.transitions import set_delivery_state, set_job_state
from radassist.delivery.retry import backoff_seconds, expired
from radassist.delivery.send import send_delivery
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.events import EventTag, record_event
from radassist.logging import log_context
from radassist.metrics import DELIVERIES, JOBS_FINISHED, observe_delivery, observe_stage
from radassist.states import FINAL_DELIVERY_STATES, DeliveryState, JobState
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name="radassist.deliver", ignore_result=True)
def deliver(self: RadAssistTask, delivery_id: str) -> None:
    delivery_uuid = uuid.UUID(delivery_id)
    settings = self.settings
    with self.session() as session:
        now = utcnow()
        claimed = set_delivery_state(
            session, delivery_uuid, DeliveryState.PENDING, DeliveryState.SENDING,
            Delivery.next_attempt_at <= now,
            attempts=Delivery.attempts + 1,
            first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
            next_attempt_at=now,
        )
        session.commit()
        if not claimed:
            return
        delivery = session.get(Delivery, delivery_uuid)
        assert delivery is not None
        job = session.get(Job, delivery.job_id)
        assert job is not None
        session.expunge(delivery)

    with log_context(job_id=job.id, study_id=job.study_id):
        error: RadAssistError | None = None
        try:
            send_delivery(delivery, settings, self.outputs)
        except RadAssistError as exc:
            error = exc
        except Exception as exc:
            logger.exception("delivery attempt failed unexpectedly")
            error = TransientFailure(f"unexpected {type(exc).__name__}", code="delivery.error")
        _record_outcome(self, delivery, job, error)


@retry_while_db_down("recording the delivery outcome")
def _record_outcome(task: RadAssistTask, delivery: Delivery, job: Job, error: RadAssistError | None) -> None:
    settings = task.settings
    now = utcnow()
    detail = {"channel": str(delivery.channel), "destination": delivery.destination, "attempt": delivery.attempts}
    retry_in: float | None = None
    since_first = (now - delivery.first_attempt_at).total_seconds() if delivery.first_attempt_at else None
    with task.session() as session:
        if error is None:
            set_delivery_state(session, delivery.id, DeliveryState.SENDING, DeliveryState.DELIVERED,
                               delivered_at=now, last_error_code=None, last_error_message=None)
            record_event(session, EventTag.DELIVERY_SENT, study_id=job.study_id, job_id=job.id, **detail)
            DELIVERIES.labels(channel=str(delivery.channel), outcome="delivered").inc()
            observe_delivery(str(delivery.channel), "delivered", since_first)
            logger.info("%s delivered to %s (attempt %d)", delivery.channel, delivery.destination, delivery.attempts)
        elif isinstance(error, TransientFailure) and not expired(delivery.first_attempt_at or now, now, settings.delivery):
            retry_in = backoff_seconds(delivery.attempts, settings.delivery)
            set_delivery_state(session, delivery.id, DeliveryState.SENDING, DeliveryState.PENDING,
                               next_attempt_at=now + dt.timedelta(seconds=retry_in),
                               last_error_code=error.code, last_error_message=error.message[:2000])
            record_event(session, EventTag.DELIVERY_RETRY, study_id=job.study_id, job_id=job.id,
                         code=error.code, retry_in_s=retry_in, **detail)
            DELIVERIES.labels(channel=str(delivery.channel), outcome="retry").inc()
            logger.warning("%s to %s failed (%s); retry in %.0f s", delivery.channel, delivery.destination, error.code, retry_in)
        else:
            if isinstance(error, TransientFailure):
                error = PermanentFailure(f"gave up after {delivery.attempts} attempts: {error.message}", code=error.code)
            assert error is not None
            set_delivery_state(session, delivery.id, DeliveryState.SENDING, DeliveryState.FAILED,
                               last_error_code=error.code, last_error_message=error.message[:2000])
            record_event(session, EventTag.DELIVERY_FAILED, study_id=job.study_id, job_id=job.id, code=error.code, **detail)
            DELIVERIES.labels(channel=str(delivery.channel), outcome="failed").inc()
            observe_delivery(str(delivery.channel), "failed", since_first)
            logger.warning("%s to %s failed for good (%s)", delivery.channel, delivery.destination, error.code)
        session.flush()
        finish_job_if_delivered(session, job.id, job.study_id, now)
        if retry_in is not None:
            after_commit(session, lambda: deliver.apply_async((str(delivery.id),), countdown=retry_in))
        session.commit()


def finish_job_if_delivered(session, job_id: uuid.UUID, study_id: uuid.UUID, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """Close the job once every delivery is final: done if all arrived, failed otherwise."""
    rows = session.execute(
        select(Delivery.state, Delivery.channel, Delivery.destination, Delivery.last_error_code,
               Delivery.last_error_message).where(Delivery.job_id == job_id)
    ).all()
    if not rows or any(state not in FINAL_DELIVERY_STATES for state, *_ in rows):
        return
    failed = [r for r in rows if r.state is not DeliveryState.DELIVERED]
    if not failed:
        if set_job_state(session, job_id, JobState.DELIVERING, JobState.DONE, finished_at=now):
            record_event(session, EventTag.JOB_DONE, study_id=study_id, job_id=job_id, deliveries=len(rows))
            _count_finished(session, job_id, JobState.DONE)
        return
    code = failed[0].last_error_code or "delivery.failed"
    message = "; ".join(f"{r.channel} to {r.destination}: {r.last_error_message or r.state}" for r in failed)
    if set_job_state(session, job_id, JobState.DELIVERING, JobState.FAILED,
                     finished_at=now, error_code=code, error_message=message[:2000]):
        record_event(session, EventTag.JOB_FAILED, study_id=study_id, job_id=job_id, code=code)
        _count_finished(session, job_id, JobState.FAILED)


def _count_finished(session, job_id: uuid.UUID, state: JobState) -> None:  # type: ignore[no-untyped-def]
    JOBS_FINISHED.labels(state=str(state)).inc()
    job = session.get(Job, job_id)
    if job is not None and job.drafted_at is not None and job.finished_at is not None:
        observe_stage("delivering", (job.finished_at - job.drafted_at).total_seconds())
        observe_stage("total", (job.finished_at - job.created_at).total_seconds())
