"""A newer draft's ORU waits while an older draft's ORU to the same RIS is still being sent.

A RIS files each ORU^R01 of an order over the one before, so the ORUs of one study must reach it
in the order their drafts were made.  An older ORU still pending when a newer one exists is
cancelled (:mod:`radassist.delivery.superseded`); this covers the other case, an older ORU already
``sending`` (its attempt can last the whole ACK timeout with a slow RIS) when the newer one is due.
The newer one then waits :data:`WAIT_FOR_OLDER_S` and tries again, until the older one has settled.
Its first wait is told where an admin looks: the delivery's reason on the study page
(:data:`WAITING_CODE`, cleared when it is sent), a ``delivery:waiting`` event and one log line.

Both checks run under the study's turn: each HL7 claim starts by writing the study's row, so two
claims of one study's ORUs take turns (a row lock on PostgreSQL, the write lock on SQLite) and the
second reads what the first committed.  Without it each could read the other as not yet sending.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from radassist.db.study_turn import take_study_turn
from radassist.db.tables import Delivery, Job
from radassist.events import EventTag, record_event
from radassist.states import DeliveryChannel, DeliveryState, JobPriority

logger = logging.getLogger(__name__)

WAIT_FOR_OLDER_S = 3.0
WAITING_CODE = "hl7.waiting_for_older"
WAITING_MESSAGE = ("waits until the RIS has acknowledged the ORU of an earlier draft of this study, "
                   "so that the RIS files the newest draft last")


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not sent now: an older draft's ORU to the same RIS is on its way; try again in ``seconds``."""

    seconds: float
    priority: JobPriority


def take_oru_study_turn(session: Session, delivery_id: uuid.UUID) -> bool:
    """Start the claim of an ORU with its study's turn (:mod:`radassist.db.study_turn`, held until
    the commit); False, with nothing written, for a delivery that is not an ORU."""
    study_id = session.scalar(
        select(Job.study_id).join(Delivery, Delivery.job_id == Job.id)
        .where(Delivery.id == delivery_id, Delivery.channel == DeliveryChannel.HL7)
    )
    if study_id is None:
        return False
    take_study_turn(session, study_id)
    return True


def wait_for_older(session: Session, delivery_id: uuid.UUID, now: dt.datetime) -> Deferred | None:
    """Put off a due pending ORU while an older job of its study has an ORU to the same RIS sending."""
    this_job, older_job, older = aliased(Job), aliased(Job), aliased(Delivery)
    waiting = session.execute(
        select(this_job.priority, this_job.id, this_job.study_id, Delivery.last_error_code)
        .join(Delivery, Delivery.job_id == this_job.id)
        .where(
            Delivery.id == delivery_id,
            Delivery.state == DeliveryState.PENDING,
            exists().where(
                older.job_id == older_job.id,
                older_job.study_id == this_job.study_id,
                older_job.created_at < this_job.created_at,
                older.channel == DeliveryChannel.HL7,
                older.destination == Delivery.destination,
                older.state == DeliveryState.SENDING,
            ),
        )
    ).first()
    if waiting is None:
        return None
    priority, job_id, study_id, code = waiting
    # Still pending, only later: no attempt is counted.
    put_off = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now)
        .values(next_attempt_at=now + dt.timedelta(seconds=WAIT_FOR_OLDER_S),
                last_error_code=WAITING_CODE, last_error_message=WAITING_MESSAGE)
    )
    if not getattr(put_off, "rowcount", 0):
        return None
    if code != WAITING_CODE:  # its first wait; the next ones every few seconds say nothing new
        record_event(session, EventTag.DELIVERY_WAITING, study_id=study_id, job_id=job_id,
                     delivery_id=str(delivery_id), reason=WAITING_CODE)
        logger.info("ORU waits for an earlier draft's ORU of its study to be acknowledged")
    return Deferred(WAIT_FOR_OLDER_S, JobPriority(priority))


__all__ = ["WAITING_CODE", "WAIT_FOR_OLDER_S", "Deferred", "take_oru_study_turn", "wait_for_older"]
