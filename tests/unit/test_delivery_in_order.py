"""A newer draft's ORU waits while an older draft's ORU of the same study is being sent to the same
RIS, so the RIS files them in the order they were drafted; on both databases."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import DeliverySettings
from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Event, Job, Study
from radassist.db.transitions import set_delivery_state
from radassist.delivery.attempt import claim_delivery
from radassist.delivery.in_order import WAIT_FOR_OLDER_S, WAITING_CODE, Deferred, take_oru_study_turn
from radassist.delivery.outcome import record_outcome
from radassist.states import DeliveryChannel, DeliveryState, JobPriority, JobState, StudyState


def _two_drafts(factory: sessionmaker[Session], older_state: DeliveryState, *, older_ris: str = "ris",
                ) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A study with an older job's ORU in ``older_state`` and a newer job's ORU and SR due: the
    older ORU's id, the newer ORU's and the newer SR's."""
    now = utcnow()
    with factory() as session:
        study = Study(study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int}", state=StudyState.COMPLETE)
        session.add(study)
        session.flush()
        older_job, newer_job = (Job(study_id=study.id, state=JobState.DELIVERING, model_name="m", created_at=at,
                                    drafted_at=at) for at in (now - dt.timedelta(minutes=5), now))
        session.add_all([older_job, newer_job])
        session.flush()
        deliveries = [Delivery(job_id=job.id, channel=channel, destination=destination, state=state,
                               next_attempt_at=now - dt.timedelta(seconds=1))
                      for job, channel, destination, state in (
                          (older_job, DeliveryChannel.HL7, older_ris, older_state),
                          (newer_job, DeliveryChannel.HL7, "ris", DeliveryState.PENDING),
                          (newer_job, DeliveryChannel.SR, "pacs", DeliveryState.PENDING))]
        session.add_all(deliveries)
        session.commit()
        return deliveries[0].id, deliveries[1].id, deliveries[2].id


def test_a_newer_oru_waits_while_the_older_one_is_being_sent(factory: sessionmaker[Session]) -> None:
    older, newer, _ = _two_drafts(factory, DeliveryState.SENDING)
    with factory() as session:
        before = utcnow()
        deferred = claim_delivery(session, newer, before)
        assert deferred == Deferred(WAIT_FOR_OLDER_S, JobPriority.ROUTINE)
        row = session.get(Delivery, newer)
        assert row is not None and row.state is DeliveryState.PENDING and row.attempts == 0
        assert row.next_attempt_at >= before + dt.timedelta(seconds=WAIT_FOR_OLDER_S)
        # The older one arrives: the newer one goes at its next try.
        session.execute(update(Delivery).where(Delivery.id == older).values(state=DeliveryState.DELIVERED))
        session.commit()
        claimed = claim_delivery(session, newer, before + dt.timedelta(seconds=WAIT_FOR_OLDER_S + 1))
        assert isinstance(claimed, tuple) and claimed[0].state is DeliveryState.SENDING


def test_an_oru_that_waits_says_so_once_and_clears_it_when_sent(factory: sessionmaker[Session]) -> None:
    older, newer, _ = _two_drafts(factory, DeliveryState.SENDING)
    with factory() as session:
        now = utcnow()
        for wait in range(3):  # three waits, one event
            at = now + dt.timedelta(seconds=wait * (WAIT_FOR_OLDER_S + 1))
            assert isinstance(claim_delivery(session, newer, at), Deferred)
        row = session.get(Delivery, newer)
        assert row is not None and row.last_error_code == WAITING_CODE and "earlier draft" in str(row.last_error_message)
        events = session.scalars(select(Event.detail).where(Event.tag == "delivery:waiting")).all()
        assert events == [{"delivery_id": str(newer), "reason": WAITING_CODE}]

        session.execute(update(Delivery).where(Delivery.id == older).values(state=DeliveryState.DELIVERED))
        session.commit()
    with factory() as session:  # as the deliver task does: a session to claim, one to record
        claimed = claim_delivery(session, newer, now + dt.timedelta(minutes=1))
    assert isinstance(claimed, tuple)
    with factory() as session:
        record_outcome(session, claimed[0], claimed[1], None, DeliverySettings(), utcnow())
        session.commit()
        row = session.get(Delivery, newer)
        assert row is not None and row.state is DeliveryState.DELIVERED and row.last_error_code is None


def test_only_an_oru_to_the_same_ris_waits(factory: sessionmaker[Session]) -> None:
    _, newer, newer_sr = _two_drafts(factory, DeliveryState.SENDING, older_ris="other-ris")
    with factory() as session:
        assert isinstance(claim_delivery(session, newer, utcnow()), tuple)  # another RIS: no order to keep
    _, _, newer_sr = _two_drafts(factory, DeliveryState.SENDING)
    with factory() as session:
        assert isinstance(claim_delivery(session, newer_sr, utcnow()), tuple)  # an SR: the PACS keeps both


def test_two_claims_at_once_take_turns_on_the_study(factory: sessionmaker[Session]) -> None:
    """The older ORU's claim has not committed when the newer one's is made: without the study's
    turn the newer one would read the older as still pending and both would be on their way at once."""
    older, newer, _ = _two_drafts(factory, DeliveryState.PENDING)
    outcome: list[object] = []
    first = factory()
    try:
        assert take_oru_study_turn(first, older)  # the older ORU's claim, up to its commit
        assert set_delivery_state(first, older, DeliveryState.PENDING, DeliveryState.SENDING)

        def newer_claim() -> None:
            with factory() as session:
                outcome.append(claim_delivery(session, newer, utcnow()))

        racing = threading.Thread(target=newer_claim)
        racing.start()
        time.sleep(0.5)
        assert outcome == []  # waiting for the study's turn
        first.commit()
    finally:
        first.close()
    racing.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], Deferred)
