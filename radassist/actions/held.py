"""The admin's decision on an output held back (:mod:`radassist.outputs.holds`): send it anyway, or
cancel it.

Only a built output can be sent anyway (an ORU held as ``hl7.no_order``; one held as
``hl7.no_patient_id`` was never built).  A cancelled held output counts as a decision, not a
failure: once every other output is delivered the job is done.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from radassist.actions.outcome import ActionResult, Dispatch, done, refused
from radassist.broker import DELIVER_TASK
from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Job
from radassist.db.transitions import set_delivery_state
from radassist.delivery.outcome import finish_job_if_delivered
from radassist.events import EventTag, record_event
from radassist.states import DeliveryState


def _held(session: Session, delivery_id: uuid.UUID, user: str, action: str) -> tuple[Delivery, Job] | ActionResult:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return refused(session, user, action, str(delivery_id), "no such delivery")
    if delivery.state is not DeliveryState.HELD:
        return refused(session, user, action, str(delivery_id), f"delivery is {delivery.state.value}, not held")
    job = session.get(Job, delivery.job_id)
    assert job is not None
    return delivery, job


def send_held(session: Session, delivery_id: uuid.UUID, user: str) -> ActionResult:
    """A held output that was built goes out now, as it is."""
    found = _held(session, delivery_id, user, "send_held")
    if isinstance(found, ActionResult):
        return found
    delivery, job = found
    target = str(delivery_id)
    if not delivery.payload_path:
        return refused(session, user, "send_held", target,
                       f"nothing was built to send ({delivery.last_error_code}); cancel it or re-draft the study")
    held_for = delivery.last_error_code
    if not set_delivery_state(session, delivery_id, DeliveryState.HELD, DeliveryState.PENDING, next_attempt_at=utcnow(),
                              last_error_code=None, last_error_message=None):
        return refused(session, user, "send_held", target, "delivery changed state meanwhile")
    record_event(session, EventTag.DELIVERY_RELEASED, study_id=job.study_id, job_id=job.id,
                 channel=str(delivery.channel), destination=delivery.destination, held_for=held_for, by=user)
    return done(session, user, "send_held", target, f"{delivery.channel.value} to {delivery.destination} sent anyway",
                (Dispatch.of(DELIVER_TASK, target),), held_for=held_for, job_id=str(job.id))


def cancel_held(session: Session, delivery_id: uuid.UUID, user: str) -> ActionResult:
    """A held output is never sent; the job finishes when its other outputs have."""
    found = _held(session, delivery_id, user, "cancel_held")
    if isinstance(found, ActionResult):
        return found
    delivery, job = found
    target = str(delivery_id)
    held_for = delivery.last_error_code
    if not set_delivery_state(session, delivery_id, DeliveryState.HELD, DeliveryState.CANCELLED):
        return refused(session, user, "cancel_held", target, "delivery changed state meanwhile")
    record_event(session, EventTag.DELIVERY_CANCELLED, study_id=job.study_id, job_id=job.id,
                 channel=str(delivery.channel), destination=delivery.destination, held_for=held_for, by=user)
    session.flush()
    finish_job_if_delivered(session, job.id, job.study_id, utcnow())
    return done(session, user, "cancel_held", target, f"{delivery.channel.value} to {delivery.destination} cancelled",
                held_for=held_for, job_id=str(job.id))
