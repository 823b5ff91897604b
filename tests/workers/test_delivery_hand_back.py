"""An io worker's restart under its name, and the sweep once it is silent, hand back the deliveries it
was sending and send their messages again."""

from __future__ import annotations

import datetime as dt

import pytest
from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session

from radassist.broker import DELIVER_TASK
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.tables import Delivery
from radassist.presence.report import report_seen, report_start
from radassist.states import DeliveryState, JobState
from tests.workers.test_tasks import add_hl7_delivery, add_job, app, reload, session  # noqa: F401 - fixtures


def _sending(session: Session, settings: Settings, holder: str) -> Delivery:  # noqa: F811 - not the fixture
    delivery = add_hl7_delivery(session, settings, add_job(session, JobState.DELIVERING), DeliveryState.SENDING)
    session.execute(update(Delivery).where(Delivery.id == delivery.id).values(held_by=holder))
    session.commit()
    return delivery


def test_an_io_worker_started_again_sends_again_what_it_was_sending(
    app: Celery, session: Session, migrated_settings: Settings  # noqa: F811
) -> None:
    from radassist.broker import IO_QUEUE, queue_depths
    from workers.restart import hand_back_on_start

    delivery = _sending(session, migrated_settings, "io@host")
    waiting = queue_depths(app, [IO_QUEUE], timeout=5.0)[IO_QUEUE]
    hand_back_on_start(app, "io@host", ["gpu"])  # a drafting worker of that name sends nothing
    reload(session, delivery)
    assert delivery.state is DeliveryState.SENDING
    hand_back_on_start(app, "io@host", ["io"])
    reload(session, delivery)
    assert delivery.state is DeliveryState.PENDING and delivery.held_by is None
    assert queue_depths(app, [IO_QUEUE], timeout=5.0)[IO_QUEUE] == waiting + 1  # its message sent again


def test_the_sweep_hands_back_a_silent_io_workers_deliveries(
    app: Celery, session: Session, migrated_settings: Settings, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from tests.workers.sweep_sends import record_sweep_sends
    from workers.tasks.sweep import sweep

    queue = migrated_settings.queue
    sent = record_sweep_sends(monkeypatch)
    report_start(session, "io@gone", ["io"], 1, utcnow() - dt.timedelta(seconds=queue.worker_lost_after_seconds + 1))
    report_start(session, "cpu@alive", ["cpu"], 2, utcnow() - dt.timedelta(seconds=queue.worker_heartbeat_seconds + 1))
    report_seen(session, "cpu@alive", utcnow(), queue.worker_heartbeat_seconds)
    session.commit()
    gone, alive = _sending(session, migrated_settings, "io@gone"), _sending(session, migrated_settings, "cpu@alive")
    sweep.apply().get()
    reload(session, gone)
    reload(session, alive)
    assert gone.state is DeliveryState.PENDING and alive.state is DeliveryState.SENDING
    assert sent[DELIVER_TASK] == [str(gone.id)]
