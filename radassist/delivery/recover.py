"""Deliveries whose worker or message was lost, found by the sweep and handed back.

Handing back is safe because the delivery task starts with a compare-and-set and exits if it lost.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Delivery, Job
from radassist.db.transitions import STAT_AHEAD, set_delivery_state
from radassist.delivery.outcome import finish_job_if_delivered
from radassist.events import EventTag, record_event
from radassist.states import FINAL_DELIVERY_STATES, DeliveryState, JobPriority, JobState

LOST_BATCH = 100
LOST_MESSAGE_GRACE_S = 60.0
"""A due delivery not picked up this long after its time is assumed lost and queued again."""


def hand_back_stuck(session: Session, now: dt.datetime, ack_timeout_s: float) -> None:
    """Deliveries sending for three times the ACK timeout (at least three minutes) lost their worker."""
    cutoff = now - dt.timedelta(seconds=max(ack_timeout_s, 60) * 3)
    for delivery_id, job_id in session.execute(
        select(Delivery.id, Delivery.job_id).where(
            Delivery.state == DeliveryState.SENDING, Delivery.next_attempt_at < cutoff
        )
    ).all():
        if set_delivery_state(session, delivery_id, DeliveryState.SENDING, DeliveryState.PENDING, next_attempt_at=now):
            record_event(session, EventTag.DELIVERY_REQUEUED, job_id=job_id, delivery=str(delivery_id))


def close_settled_jobs(session: Session, now: dt.datetime) -> list[uuid.UUID]:
    """Delivering jobs whose every delivery is final, closed (done or failed); their ids.

    Each attempt closes its job when it settles the last delivery
    (:func:`radassist.delivery.outcome.finish_job_if_delivered`); this is the backstop for a close
    that was lost all the same (its worker died between the two, or a release older than the job's
    lock left it open), so a job never shows ``delivering`` with nothing left to send.
    """
    open_delivery = (select(Delivery.id)
                     .where(Delivery.job_id == Job.id, Delivery.state.not_in(tuple(FINAL_DELIVERY_STATES)))
                     .exists())
    settled = session.execute(
        select(Job.id, Job.study_id).where(Job.state == JobState.DELIVERING, ~open_delivery).limit(LOST_BATCH)
    ).all()
    return [job_id for job_id, study_id in settled if finish_job_if_delivered(session, job_id, study_id, now)]


def overdue(session: Session, now: dt.datetime) -> list[uuid.UUID]:
    """Pending deliveries due for longer than ``LOST_MESSAGE_GRACE_S``: their message is presumed lost."""
    stale = now - dt.timedelta(seconds=LOST_MESSAGE_GRACE_S)
    return list(session.scalars(
        select(Delivery.id).where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= stale)
    ).all())


def stat_due(session: Session, now: dt.datetime, other_than: uuid.UUID) -> list[uuid.UUID]:
    """Due pending deliveries of STAT jobs, oldest first, at most ``STAT_AHEAD`` (the stages' one
    bound): a delivery task sends them before its own, whatever message woke it (the embedded broker
    has no message priorities)."""
    return list(session.scalars(
        select(Delivery.id)
        .join(Job, Job.id == Delivery.job_id)
        .where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now,
               Job.priority == JobPriority.STAT, Delivery.id != other_than)
        .order_by(Delivery.next_attempt_at)
        .limit(STAT_AHEAD)
    ).all())
