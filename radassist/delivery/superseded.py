"""An older draft's ORU is not sent once a newer draft's ORU for the same study is on its way.

A RIS files each ORU^R01 of an order over the one before: the last one received is the report it
shows.  A job already delivering when its study grew keeps going
(:mod:`radassist.completion.supersede`), so its ORU may still be pending (the RIS was down, its
back-off not yet over) when the newer job's ORU is built.  Sent after the newer one, it would put
the draft of part of the study back in front of the radiologist.  So each attempt first asks
whether a newer job of the same study has an ORU for the same RIS pending, sending, held or
delivered; if so this one is cancelled (``delivery.superseded``) instead of sent.  The SR is sent
either way: a PACS keeps both, and the newer SR names the older as its predecessor.

An older ORU already being sent makes the newer one wait instead (:mod:`radassist.delivery.in_order`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from radassist.db.tables import Delivery, Job
from radassist.db.transitions import set_delivery_state
from radassist.delivery.outcome import finish_job_if_delivered
from radassist.events import EventTag, record_event
from radassist.states import DeliveryChannel, DeliveryState

logger = logging.getLogger(__name__)

SUPERSEDED_CODE = "delivery.superseded"

_ON_ITS_WAY_OR_ARRIVED = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.HELD, DeliveryState.DELIVERED)


def cancel_if_superseded(session: Session, delivery_id: uuid.UUID, now: dt.datetime) -> bool:
    """Cancel a pending ORU that a newer job of its study has replaced (and close its job if that was
    its last open delivery); True when it was cancelled, to be committed by the caller."""
    this_job, newer_job, newer = aliased(Job), aliased(Job), aliased(Delivery)
    replaced = session.execute(
        select(Delivery.job_id, this_job.study_id)
        .join(this_job, this_job.id == Delivery.job_id)
        .where(
            Delivery.id == delivery_id,
            Delivery.channel == DeliveryChannel.HL7,
            Delivery.state == DeliveryState.PENDING,
            exists().where(
                newer.job_id == newer_job.id,
                newer_job.study_id == this_job.study_id,
                newer_job.shadow.is_(False),
                newer_job.created_at > this_job.created_at,
                newer.channel == DeliveryChannel.HL7,
                newer.destination == Delivery.destination,
                newer.state.in_(_ON_ITS_WAY_OR_ARRIVED),
            ),
        )
    ).one_or_none()
    if replaced is None:
        return False
    job_id, study_id = replaced
    if not set_delivery_state(session, delivery_id, DeliveryState.PENDING, DeliveryState.CANCELLED,
                              last_error_code=SUPERSEDED_CODE,
                              last_error_message="a newer draft of the study went to the RIS instead"):
        return False
    record_event(session, EventTag.DELIVERY_CANCELLED, study_id=study_id, job_id=job_id,
                 channel=str(DeliveryChannel.HL7), reason=SUPERSEDED_CODE)
    finish_job_if_delivered(session, job_id, study_id, now)
    logger.info("an older draft's ORU was not sent: a newer draft of the study replaced it at the RIS")
    return True


__all__ = ["SUPERSEDED_CODE", "cancel_if_superseded"]
