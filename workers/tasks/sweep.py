"""The scheduler's periodic sweep: complete quiet studies into jobs, and re-queue lost work.

Completion is a sweep because "no instance for N seconds" is a property of time, not of a message.
Re-queueing is safe because every task starts with a compare-and-set and exits if it lost.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from sqlalchemy import select

from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Job
from radassist.db.transitions import set_delivery_state, set_job_state
from radassist.events import EventTag, record_event
from radassist.intake.completion import claim_all
from radassist.states import DeliveryState, JobState
from workers.base import RadAssistTask
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)

LOST_MESSAGE_GRACE_S = 60.0
"""A due delivery not picked up this long after its time is assumed lost and queued again."""


@shared_task(base=RadAssistTask, bind=True, name="radassist.sweep", acks_late=False, ignore_result=True)
def sweep(self: RadAssistTask) -> None:
    from workers.tasks.deliver import deliver
    from workers.tasks.draft import draft_study

    settings = self.settings
    now = utcnow()
    with self.session() as session:
        # Each pipeline (called AE title) with its own quiet time, rules and model; priority order.
        job_ids = claim_all(session, settings, now=now)
        for job_id in job_ids:
            after_commit(session, lambda j=job_id: draft_study.apply_async((str(j),)))
        session.commit()
    if job_ids:
        logger.info("%d studies complete; jobs queued", len(job_ids))

    with self.session() as session:
        _requeue_lost_work(session, now, settings.queue.job_time_limit_seconds, settings.hl7.ack_timeout_seconds)
        stale = now - dt.timedelta(seconds=LOST_MESSAGE_GRACE_S)
        due = session.scalars(
            select(Delivery.id).where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= stale)
        ).all()
        session.commit()
    for delivery_id in due:
        deliver.apply_async((str(delivery_id),))


def _requeue_lost_work(session, now: dt.datetime, job_limit_s: float, ack_timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    """Hand back work whose worker died: drafting past the hard time limit, sending past its timeout."""
    from workers.tasks.draft import draft_study

    cutoff = now - dt.timedelta(seconds=job_limit_s + 60)
    for job_id, study_id in session.execute(
        select(Job.id, Job.study_id).where(Job.state == JobState.DRAFTING, Job.started_at < cutoff)
    ).all():
        if set_job_state(session, job_id, JobState.DRAFTING, JobState.QUEUED):
            record_event(session, EventTag.JOB_REQUEUED, study_id=study_id, job_id=job_id, reason="worker lost")
            after_commit(session, lambda j=job_id: draft_study.apply_async((str(j),)))
    send_cutoff = now - dt.timedelta(seconds=max(ack_timeout_s, 60) * 3)
    for delivery_id, job_id in session.execute(
        select(Delivery.id, Delivery.job_id).where(
            Delivery.state == DeliveryState.SENDING, Delivery.next_attempt_at < send_cutoff
        )
    ).all():
        if set_delivery_state(session, delivery_id, DeliveryState.SENDING, DeliveryState.PENDING, next_attempt_at=now):
            record_event(session, EventTag.DELIVERY_REQUEUED, job_id=job_id, delivery=str(delivery_id))
