"""One attempt at one delivery: claim it (pending and due -> sending), then send it.

The claim is a compare-and-set, so a duplicated or early message does nothing.  Sending needs no
database: the delivery and its job are detached copies, and the payload is the stored file.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import func
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.tables import Delivery, Job
from radassist.db.transitions import set_delivery_state
from radassist.delivery.in_order import Deferred, take_oru_study_turn, wait_for_older
from radassist.delivery.send import send_delivery
from radassist.delivery.superseded import cancel_if_superseded
from radassist.errors import RadAssistError, TransientFailure
from radassist.reasons import plain_reason
from radassist.states import DeliveryState
from radassist.store.outputs import OutputStore

logger = logging.getLogger(__name__)


def claim_delivery(session: Session, delivery_id: uuid.UUID, now: dt.datetime, holder: str | None = None,
                   ) -> tuple[Delivery, Job] | Deferred | None:
    """Move a due pending delivery to sending under ``holder`` (the io worker's node name) and commit;
    detached copies of it and its job, or None (also when a newer draft's ORU replaced it:
    :mod:`radassist.delivery.superseded`), or when to try again (an older draft's ORU to the same RIS
    is still being sent: :mod:`radassist.delivery.in_order`)."""
    if take_oru_study_turn(session, delivery_id):
        if cancel_if_superseded(session, delivery_id, now):
            session.commit()
            return None
        deferred = wait_for_older(session, delivery_id, now)
        if deferred is not None:
            session.commit()
            return deferred
    claimed = set_delivery_state(
        session, delivery_id, DeliveryState.PENDING, DeliveryState.SENDING,
        Delivery.next_attempt_at <= now,
        attempts=Delivery.attempts + 1,
        first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
        next_attempt_at=now,
        held_by=holder,
    )
    session.commit()
    if not claimed:
        return None
    delivery = session.get(Delivery, delivery_id)
    assert delivery is not None
    job = session.get(Job, delivery.job_id)
    assert job is not None
    session.expunge(delivery)
    session.expunge(job)
    return delivery, job


def send(delivery: Delivery, settings: Settings, outputs: OutputStore) -> RadAssistError | None:
    """Send the stored payload once; None when the destination took it, else why not.

    An unexpected exception counts as transient (retried), and is logged with its traceback.
    """
    try:
        send_delivery(delivery, settings, outputs)
    except RadAssistError as exc:
        return exc
    except Exception as exc:
        logger.exception("delivery attempt failed unexpectedly")
        return TransientFailure(f"sending failed: {plain_reason(exc, 'sending')}", code="delivery.error")
    return None
