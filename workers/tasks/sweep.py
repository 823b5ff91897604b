"""The scheduler's periodic sweep: complete quiet studies into jobs, and re-queue lost work.

Completion is a sweep because "no instance for N seconds" is a property of time, not of a message.
Re-queueing is safe because every task starts with a compare-and-set and exits if it lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from functools import partial

from celery import shared_task
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radassist.broker import GPU_QUEUE, queue_depths
from radassist.completion.claim import claim_all
from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Job
from radassist.db.transitions import set_delivery_state, set_job_state
from radassist.events import EventTag, record_event
from radassist.states import DeliveryState, JobState
from workers.base import RadAssistTask
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)

LOST_MESSAGE_GRACE_S = 60.0
"""A due delivery not picked up this long after its time is assumed lost and queued again."""

LOST_JOB_GRACE_S = 120.0
"""A job still queued this long after it was queued (or last claimed) while the drafting queue holds
no message lost its message, e.g. one published while the broker was restarting; it is queued again."""

LOST_JOB_BATCH = 100


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
            after_commit(session, partial(draft_study.apply_async, (str(job_id),)))
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

    with self.session() as session:
        lost = _queued_without_message(self, session, now)
    for job_id in lost:
        draft_study.apply_async((str(job_id),))
    if lost:
        logger.warning("%d queued jobs had no message in the drafting queue; queued again", len(lost))


def _queued_without_message(task: RadAssistTask, session: Session, now: dt.datetime) -> list[uuid.UUID]:
    """Queued jobs whose message is gone: old enough, and the drafting queue is empty.

    A job is committed ``queued`` before its message is published (``after_commit``); when the
    publish fails (the broker is restarting) nothing else would ever queue it again.  Checking the
    queue's depth first keeps the sweep from piling copies onto a long but healthy backlog; a copy
    that does go out is harmless, since the draft task starts with a compare-and-set.
    """
    stale = now - dt.timedelta(seconds=LOST_JOB_GRACE_S)
    ids = session.scalars(
        select(Job.id)
        .where(Job.state == JobState.QUEUED, func.coalesce(Job.started_at, Job.created_at) < stale)
        .order_by(Job.created_at)
        .limit(LOST_JOB_BATCH)
    ).all()
    if not ids or _queue_depth(task, GPU_QUEUE) != 0:
        return []
    return list(ids)


def _queue_depth(task: RadAssistTask, queue: str) -> int | None:
    """Messages waiting in ``queue``; None when the broker does not answer (then nothing is re-sent)."""
    try:
        return queue_depths(task.app, [queue], timeout=5.0)[queue]
    except Exception as exc:  # noqa: BLE001 - no answer: do not re-send
        logger.warning("could not read the depth of queue %s (%s)", queue, type(exc).__name__)
        return None


def _requeue_lost_work(session, now: dt.datetime, job_limit_s: float, ack_timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    """Hand back work whose worker died: drafting past the hard time limit, sending past its timeout."""
    from workers.tasks.draft import draft_study

    cutoff = now - dt.timedelta(seconds=job_limit_s + 60)
    for job_id, study_id in session.execute(
        select(Job.id, Job.study_id).where(Job.state == JobState.DRAFTING, Job.started_at < cutoff)
    ).all():
        if set_job_state(session, job_id, JobState.DRAFTING, JobState.QUEUED):
            record_event(session, EventTag.JOB_REQUEUED, study_id=study_id, job_id=job_id, reason="worker lost")
            after_commit(session, partial(draft_study.apply_async, (str(job_id),)))
    send_cutoff = now - dt.timedelta(seconds=max(ack_timeout_s, 60) * 3)
    for delivery_id, job_id in session.execute(
        select(Delivery.id, Delivery.job_id).where(
            Delivery.state == DeliveryState.SENDING, Delivery.next_attempt_at < send_cutoff
        )
    ).all():
        if set_delivery_state(session, delivery_id, DeliveryState.SENDING, DeliveryState.PENDING, next_attempt_at=now):
            record_event(session, EventTag.DELIVERY_REQUEUED, job_id=job_id, delivery=str(delivery_id))
