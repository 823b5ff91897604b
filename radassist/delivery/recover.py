"""Deliveries whose worker or message was lost, found by the sweep and handed back.

Handing back is safe because the delivery task starts with a compare-and-set and exits if it lost.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from radassist.db.tables import Delivery, Job, WorkerPresence
from radassist.db.transitions import STAT_AHEAD, set_delivery_state
from radassist.delivery.outcome import finish_job_if_delivered
from radassist.events import EventTag, record_event
from radassist.presence.silence import HOLDER_RESTARTED, HOLDER_SILENT, lost
from radassist.states import FINAL_DELIVERY_STATES, DeliveryState, JobPriority, JobState

LOST_BATCH = 100
LOST_MESSAGE_GRACE_S = 60.0
"""A due delivery not picked up this long after its time is assumed lost and queued again."""


_HeldRow = Row[uuid.UUID, uuid.UUID, uuid.UUID, str | None]
_SENDING_HELD = (select(Delivery.id, Delivery.job_id, Job.study_id, Delivery.held_by)
                 .join(Job, Job.id == Delivery.job_id).where(Delivery.state == DeliveryState.SENDING))


STUCK_REASON = "sending for three ACK timeouts"


def hand_back_stuck(session: Session, now: dt.datetime, ack_timeout_s: float) -> list[uuid.UUID]:
    """Deliveries sending for three times the ACK timeout (at least three minutes) lost their worker,
    whoever held them (one that never named its worker included); handed back, their ids."""
    cutoff = now - dt.timedelta(seconds=max(ack_timeout_s, 60) * 3)
    rows = session.execute(_SENDING_HELD.where(Delivery.next_attempt_at < cutoff)).all()
    return _hand_back_sending(session, rows, now, STUCK_REASON)


def _hand_back_sending(session: Session, rows: Sequence[_HeldRow], now: dt.datetime, reason: str) -> list[uuid.UUID]:
    """Each row's delivery back to pending and due now, while still held by the row's holder (one
    claimed again meanwhile stays with its new holder); their ids."""
    handed_back = []
    for delivery_id, job_id, study_id, holder in rows:
        if set_delivery_state(session, delivery_id, DeliveryState.SENDING, DeliveryState.PENDING,
                              Delivery.held_by == holder, next_attempt_at=now, held_by=None):
            record_event(session, EventTag.DELIVERY_REQUEUED, study_id=study_id, job_id=job_id,
                         delivery=str(delivery_id), reason=reason)
            handed_back.append(delivery_id)
    return handed_back


def hand_back_held_by(session: Session, holder: str, now: dt.datetime) -> list[uuid.UUID]:
    """The deliveries an io worker named ``holder`` was sending when it died, handed back as it starts
    again under that name (it sends nothing yet); the caller sends their messages."""
    rows = session.execute(_SENDING_HELD.where(Delivery.held_by == holder)).all()
    return _hand_back_sending(session, rows, now, HOLDER_RESTARTED)


def hand_back_from_silent(session: Session, now: dt.datetime, lost_after_s: float, heartbeat_s: float,
                          ) -> list[uuid.UUID]:
    """The deliveries held by an io worker that stopped, or is silent while others answer
    (:func:`radassist.presence.silence.lost`), handed back; the caller sends their messages.

    A worker only slow to report in may still be sending: the delivery is then sent twice, as after
    :func:`hand_back_stuck`, with the same SOP Instance UID (SR) or MSH-10 (ORU) both times.
    """
    rows = session.execute(
        _SENDING_HELD.join(WorkerPresence, WorkerPresence.name == Delivery.held_by)
        .where(lost(now, lost_after_s, heartbeat_s))
    ).all()
    return _hand_back_sending(session, rows, now, HOLDER_SILENT)


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
