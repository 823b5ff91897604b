"""An older draft's ORU is not sent once a newer draft's ORU of the same study is on its way; its SR is."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Event, Job, Study
from radassist.delivery.attempt import claim_delivery
from radassist.delivery.superseded import SUPERSEDED_CODE
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState

RIS = "ris"


def _delivering_job(session: Session, study_id: uuid.UUID, created_at: dt.datetime, *, shadow: bool = False) -> Job:
    job = Job(id=uuid.uuid4(), study_id=study_id, state=JobState.DELIVERING, model_name="m", created_at=created_at,
              drafted_at=created_at, shadow=shadow)
    session.add(job)
    session.flush()
    return job


def _delivery(session: Session, job: Job, channel: DeliveryChannel, state: DeliveryState,
              destination: str = RIS) -> uuid.UUID:
    delivery = Delivery(id=uuid.uuid4(), job_id=job.id, channel=channel, destination=destination, state=state,
                        next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    session.add(delivery)
    session.flush()
    return delivery.id


def _two_drafts(factory: sessionmaker[Session], newer_oru: DeliveryState | None, *,
                newer_destination: str = RIS, newer_shadow: bool = False) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A study whose older job has a pending ORU and SR, and whose newer job's ORU is ``newer_oru``;
    the older job's id, its ORU's and its SR's."""
    now = utcnow()
    with factory() as session:
        study = Study(study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int}", state=StudyState.COMPLETE)
        session.add(study)
        session.flush()
        older = _delivering_job(session, study.id, now - dt.timedelta(minutes=5))
        oru = _delivery(session, older, DeliveryChannel.HL7, DeliveryState.PENDING)
        sr = _delivery(session, older, DeliveryChannel.SR, DeliveryState.PENDING, destination="pacs")
        newer = _delivering_job(session, study.id, now, shadow=newer_shadow)
        if newer_oru is not None:
            _delivery(session, newer, DeliveryChannel.HL7, newer_oru, destination=newer_destination)
        session.commit()
        return older.id, oru, sr


@pytest.mark.parametrize("state", [DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.HELD,
                                   DeliveryState.DELIVERED])
def test_an_older_oru_is_cancelled_once_a_newer_one_is_on_its_way(
    factory: sessionmaker[Session], state: DeliveryState
) -> None:
    older, oru, sr = _two_drafts(factory, state)
    with factory() as session:
        assert claim_delivery(session, oru, utcnow()) is None
    with factory() as session:
        cancelled = session.get(Delivery, oru)
        assert cancelled is not None and cancelled.state is DeliveryState.CANCELLED
        assert cancelled.last_error_code == SUPERSEDED_CODE and cancelled.attempts == 0
        events = session.scalars(select(Event).where(Event.job_id == older, Event.tag == "delivery:cancelled")).all()
        assert [e.detail for e in events] == [{"channel": "hl7", "reason": SUPERSEDED_CODE}]
        # the SR still goes: a PACS keeps both, and the newer SR names this one as its predecessor
        claimed = claim_delivery(session, sr, utcnow())
        assert claimed is not None and claimed[0].state is DeliveryState.SENDING
        assert session.get(Job, older).state is JobState.DELIVERING  # type: ignore[union-attr]


def test_the_job_closes_as_done_when_its_last_open_delivery_was_superseded(factory: sessionmaker[Session]) -> None:
    older, oru, sr = _two_drafts(factory, DeliveryState.DELIVERED)
    with factory() as session:
        session.get(Delivery, sr).state = DeliveryState.DELIVERED  # type: ignore[union-attr]
        session.commit()
        assert claim_delivery(session, oru, utcnow()) is None
    with factory() as session:
        job = session.get(Job, older)
        assert job is not None and job.state is JobState.DONE and job.finished_at is not None
        done = session.scalars(select(Event).where(Event.job_id == older, Event.tag == "job:done")).one()
        assert done.detail == {"deliveries": 2, "cancelled": 1}


@pytest.mark.parametrize(("newer_oru", "destination", "shadow"), [
    (None, RIS, False),  # the newer job has no ORU (yet)
    (DeliveryState.FAILED, RIS, False),  # nothing newer reached, or is on its way to, the RIS
    (DeliveryState.CANCELLED, RIS, False),
    (DeliveryState.PENDING, "another-ris", False),  # another RIS files its own copy
    (DeliveryState.PENDING, RIS, True),  # a shadow job is never sent; it replaces nothing
])
def test_an_older_oru_goes_when_nothing_newer_replaces_it_at_that_ris(
    factory: sessionmaker[Session], newer_oru: DeliveryState | None, destination: str, shadow: bool
) -> None:
    _older, oru, _sr = _two_drafts(factory, newer_oru, newer_destination=destination, newer_shadow=shadow)
    with factory() as session:
        claimed = claim_delivery(session, oru, utcnow())
        assert claimed is not None and claimed[0].state is DeliveryState.SENDING
