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
from radassist.events import EventTag, record_event
from radassist.states import DeliveryState, JobPriority

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
