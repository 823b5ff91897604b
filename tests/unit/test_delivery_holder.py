"""A delivery names the io worker that claimed it; that worker's restart under its name, or its
silence while others answer, hands back what it was sending; on both databases."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Event, Job, Study
from radassist.delivery.attempt import claim_delivery
from radassist.delivery.recover import hand_back_from_silent, hand_back_held_by
from radassist.presence.report import report_seen, report_start
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState

LOST_AFTER_S, HEARTBEAT_S = 90.0, 10.0


def _delivery(session: Session, state: DeliveryState, holder: str | None) -> uuid.UUID:
    study = Study(study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int}", state=StudyState.COMPLETE)
    session.add(study)
    session.flush()
    job = Job(study_id=study.id, state=JobState.DELIVERING, model_name="m")
    session.add(job)
    session.flush()
    delivery = Delivery(job_id=job.id, channel=DeliveryChannel.SR, destination="pacs", state=state, held_by=holder,
                        next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    session.add(delivery)
    session.commit()
    return delivery.id


def _answering(session: Session, name: str, seen_ago_s: float = 1.0) -> None:
    """A worker that reported every heartbeat for a minute, the last ``seen_ago_s`` ago."""
    seen = utcnow() - dt.timedelta(seconds=seen_ago_s)
    report_start(session, name, ["io"], 1, seen - dt.timedelta(seconds=60))
    for beat in range(6, -1, -1):
        report_seen(session, name, seen - dt.timedelta(seconds=beat * HEARTBEAT_S), HEARTBEAT_S)
    session.commit()


def test_a_claim_names_its_worker(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        delivery_id = _delivery(session, DeliveryState.PENDING, None)
        claimed = claim_delivery(session, delivery_id, utcnow(), "io@host")
    assert isinstance(claimed, tuple) and claimed[0].held_by == "io@host"


def test_a_worker_started_again_hands_back_what_it_was_sending(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        mine = _delivery(session, DeliveryState.SENDING, "io@host")
        others = _delivery(session, DeliveryState.SENDING, "io@other")
        pending = _delivery(session, DeliveryState.PENDING, "io@host")  # between two attempts: nothing to do
        now = utcnow()
        assert hand_back_held_by(session, "io@host", now) == [mine]
        session.commit()
        rows = {d.id: d for d in session.scalars(select(Delivery))}
        assert rows[mine].state is DeliveryState.PENDING and rows[mine].held_by is None
        assert rows[mine].next_attempt_at == now and rows[mine].attempts == 0
        assert rows[others].state is DeliveryState.SENDING and rows[pending].state is DeliveryState.PENDING
        reasons = session.scalars(select(Event.detail).where(Event.tag == "delivery:requeued")).all()
        assert reasons == [{"delivery": str(mine), "reason": "its worker restarted"}]


def test_a_silent_workers_deliveries_go_back_while_another_answers(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        _answering(session, "gone@a", seen_ago_s=LOST_AFTER_S + 1)
        gone = _delivery(session, DeliveryState.SENDING, "gone@a")
        assert hand_back_from_silent(session, utcnow(), LOST_AFTER_S, HEARTBEAT_S) == []  # no one answers
        _answering(session, "alive@b")
        alive = _delivery(session, DeliveryState.SENDING, "alive@b")
        assert hand_back_from_silent(session, utcnow(), LOST_AFTER_S, HEARTBEAT_S) == [gone]
        session.commit()
        assert session.get(Delivery, alive).state is DeliveryState.SENDING  # type: ignore[union-attr]


def test_a_delivery_claimed_again_meanwhile_stays_with_its_new_worker(factory: sessionmaker[Session]) -> None:
    """The hand-back is a compare-and-set on the holder, as the jobs' is."""
    from radassist.delivery.recover import _SENDING_HELD, _hand_back_sending

    with factory() as session:
        delivery_id = _delivery(session, DeliveryState.SENDING, "gone@a")
        read = session.execute(_SENDING_HELD.where(Delivery.id == delivery_id)).all()  # what the sweep read
        with factory() as other:  # handed back and claimed again by another worker meanwhile
            other.get(Delivery, delivery_id).held_by = "io@b"  # type: ignore[union-attr]
            other.commit()
        assert _hand_back_sending(session, read, utcnow(), "its worker stopped answering") == []
        session.commit()
        session.expire_all()
        assert session.get(Delivery, delivery_id).held_by == "io@b"  # type: ignore[union-attr]


def test_a_delivery_sending_for_three_ack_timeouts_goes_back_whoever_held_it(factory: sessionmaker[Session]) -> None:
    from radassist.delivery.recover import STUCK_REASON, hand_back_stuck

    with factory() as session:
        unnamed, named, recent = (_delivery(session, DeliveryState.SENDING, holder) for holder in (None, "io@a", "io@b"))
        long_ago = utcnow() - dt.timedelta(minutes=4)
        for delivery_id in (unnamed, named):
            session.get(Delivery, delivery_id).next_attempt_at = long_ago  # type: ignore[union-attr]
        session.commit()
        assert sorted(hand_back_stuck(session, utcnow(), 30.0)) == sorted([unnamed, named])
        session.commit()
        assert session.get(Delivery, recent).state is DeliveryState.SENDING  # type: ignore[union-attr]
        events = session.scalars(select(Event).where(Event.tag == "delivery:requeued")).all()
        assert {e.detail["reason"] for e in events} == {STUCK_REASON} and all(e.study_id for e in events)
