"""A job's SR and ORU settled at the same moment, on two connections: the job still closes."""

from __future__ import annotations

import threading
import time
import uuid

from sqlalchemy.orm import Session, sessionmaker

from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Job, Study
from radassist.db.transitions import set_delivery_state
from radassist.delivery.outcome import finish_job_if_delivered
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState


def _delivering_job_with_two_sends(factory: sessionmaker[Session]) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    with factory() as session:
        study = Study(study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int}", state=StudyState.COMPLETE)
        session.add(study)
        session.flush()
        job = Job(study_id=study.id, state=JobState.DELIVERING, model_name="m", drafted_at=utcnow())
        session.add(job)
        session.flush()
        sr, oru = (Delivery(job_id=job.id, channel=channel, destination=dest, state=DeliveryState.SENDING,
                            next_attempt_at=utcnow())
                   for channel, dest in ((DeliveryChannel.SR, "pacs"), (DeliveryChannel.HL7, "ris")))
        session.add_all([sr, oru])
        session.commit()
        return study.id, job.id, sr.id, oru.id


def _settle(session: Session, delivery_id: uuid.UUID, job_id: uuid.UUID, study_id: uuid.UUID) -> None:
    assert set_delivery_state(session, delivery_id, DeliveryState.SENDING, DeliveryState.DELIVERED,
                              delivered_at=utcnow())
    session.flush()
    finish_job_if_delivered(session, job_id, study_id, utcnow())


def test_two_deliveries_settled_at_once_still_close_their_job(factory: sessionmaker[Session]) -> None:
    """The first has settled its delivery but not committed when the second settles its own: without
    the job's lock each reads the other as still sending, and the job stays delivering for ever."""
    study_id, job_id, sr, oru = _delivering_job_with_two_sends(factory)
    first = factory()
    _settle(first, sr, job_id, study_id)  # uncommitted: the ORU still reads as sending here

    def second() -> None:
        with factory() as session:
            _settle(session, oru, job_id, study_id)
            session.commit()

    racing = threading.Thread(target=second)
    racing.start()
    time.sleep(0.5)  # the second is at its read (PostgreSQL: waiting on the job's row; SQLite: on the write lock)
    first.commit()
    first.close()
    racing.join(timeout=30)
    assert not racing.is_alive()
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.DONE


def test_the_sweep_closes_a_delivering_job_left_open_with_everything_settled(factory: sessionmaker[Session]) -> None:
    """The backstop for a close that was lost all the same: done when all arrived, failed when one
    failed; a job with a delivery still pending stays open."""
    from radassist.delivery.recover import close_settled_jobs

    def left_open(sr_state: DeliveryState, oru_state: DeliveryState) -> uuid.UUID:
        _, job_id, sr, oru = _delivering_job_with_two_sends(factory)
        with factory() as session:
            for delivery_id, state in ((sr, sr_state), (oru, oru_state)):
                assert set_delivery_state(session, delivery_id, DeliveryState.SENDING, state)
            session.commit()
        return job_id

    delivered = left_open(DeliveryState.DELIVERED, DeliveryState.DELIVERED)
    one_failed = left_open(DeliveryState.DELIVERED, DeliveryState.FAILED)
    still_pending = left_open(DeliveryState.DELIVERED, DeliveryState.PENDING)
    with factory() as session:
        assert sorted(close_settled_jobs(session, utcnow())) == sorted([delivered, one_failed])
        session.commit()
        states = {j: session.get(Job, j).state for j in (delivered, one_failed, still_pending)}  # type: ignore[union-attr]
        assert states == {delivered: JobState.DONE, one_failed: JobState.FAILED, still_pending: JobState.DELIVERING}
        assert close_settled_jobs(session, utcnow()) == []
