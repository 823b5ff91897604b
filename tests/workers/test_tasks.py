"""Tasks called directly (eagerly, in this process) against a real database, every pre-state.

The broker here is Celery's SQLAlchemy transport on a temporary SQLite file: follow-up messages
(retries) are really queued there, and the tests read the database for the outcome.
"""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Delivery, Event, Job, Study
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
from radassist.store.outputs import OutputStore
from tests.peers import mllp_ris
from workers.app import make_celery
from workers.base import reset_sessionmaker

ORU = (
    "MSH|^~\\&|RADASSIST|RADASSIST|RIS|HOSPITAL|20261123120000||ORU^R01^ORU_R01|{cid}|P|2.5.1\r"
    "PID|1||X||DOE^J\rOBR|1|A|A|CT^CT||||||||||||||||||||R\r"
)


@pytest.fixture
def app(migrated_settings: Settings) -> Iterator[Celery]:
    reset_sessionmaker()
    yield make_celery(migrated_settings)
    reset_sessionmaker()


@pytest.fixture
def session(migrated_settings: Settings) -> Iterator[Session]:
    maker = make_sessionmaker(migrated_settings)
    with maker() as session:
        yield session
    maker.kw["bind"].dispose()


def add_job(session: Session, state: JobState) -> Job:
    study = Study(study_instance_uid=f"1.2.3.{uuid.uuid4().int % 10**12}", state=StudyState.COMPLETE)
    session.add(study)
    session.flush()
    job = Job(study_id=study.id, state=state, model_name="tiny")
    session.add(job)
    session.commit()
    return job


def add_hl7_delivery(session: Session, settings: Settings, job: Job, state: DeliveryState,
                     due: dt.datetime | None = None) -> Delivery:
    control_id = job.id.hex[:20]
    relpath = OutputStore(settings.storage.outputs_dir).write(job.id, "oru.hl7", ORU.format(cid=control_id).encode())
    delivery = Delivery(job_id=job.id, channel=DeliveryChannel.HL7, destination="ris", state=state,
                        control_id=control_id, payload_path=relpath, next_attempt_at=due or utcnow())
    session.add(delivery)
    session.commit()
    return delivery


def reload(session: Session, obj: object) -> None:
    session.expire_all()
    session.refresh(obj)


JOB_TASKS = {"draft": ("workers.tasks.draft", "draft_study"), "prepare": ("workers.tasks.prepare", "prepare_for_model")}
"""Each job task by its module and name: imported in the test, once ``app`` has configured Celery."""
NOT_THEIRS = [
    *(("draft", s) for s in (JobState.QUEUED, JobState.PREPARING, JobState.DRAFTING, JobState.DELIVERING,
                             JobState.DONE, JobState.FAILED, JobState.CANCELLED)),  # drafts a prepared job only
    *(("prepare", s) for s in (JobState.PRIORS, JobState.PREPARING, JobState.PREPARED, JobState.DRAFTING,
                               JobState.DONE, JobState.FAILED, JobState.CANCELLED)),  # prepares a queued job only
]


@pytest.mark.parametrize(("task", "state"), NOT_THEIRS)
def test_a_job_task_leaves_a_job_it_does_not_start_from_alone(app: Celery, session: Session, task: str,
                                                               state: JobState) -> None:
    """A late or repeated message finds its job in another state: the task must neither move it nor count
    an attempt nor write an event."""
    module, name = JOB_TASKS[task]
    job = add_job(session, state)
    getattr(importlib.import_module(module), name).apply(args=(str(job.id),)).get()
    reload(session, job)
    assert job.state is state and job.attempts == 0
    assert session.scalars(select(Event).where(Event.job_id == job.id)).all() == []


@pytest.mark.parametrize("state", [DeliveryState.SENDING, DeliveryState.DELIVERED, DeliveryState.FAILED,
                                   DeliveryState.CANCELLED])
def test_deliver_task_leaves_a_delivery_that_is_not_pending_alone(
    app: Celery, session: Session, migrated_settings: Settings, state: DeliveryState
) -> None:
    from workers.tasks.deliver import deliver

    job = add_job(session, JobState.DELIVERING)
    delivery = add_hl7_delivery(session, migrated_settings, job, state)
    deliver.apply(args=(str(delivery.id),)).get()
    reload(session, delivery)
    assert delivery.state is state and delivery.attempts == 0


def test_deliver_task_waits_for_a_delivery_that_is_not_due(
    app: Celery, session: Session, migrated_settings: Settings
) -> None:
    from workers.tasks.deliver import deliver

    job = add_job(session, JobState.DELIVERING)
    delivery = add_hl7_delivery(session, migrated_settings, job, DeliveryState.PENDING,
                                due=utcnow() + dt.timedelta(minutes=5))
    deliver.apply(args=(str(delivery.id),)).get()
    reload(session, delivery)
    assert delivery.state is DeliveryState.PENDING and delivery.attempts == 0


def _settings_with_ris(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"hl7": settings.hl7.model_copy(update={"host": "127.0.0.1", "port": port,
                                                                             "ack_timeout_seconds": 2.0})})


def test_ris_accepting_finishes_the_delivery_and_the_job(
    session: Session, migrated_settings: Settings
) -> None:
    from workers.tasks.deliver import deliver

    with mllp_ris() as ris:
        make_celery(_settings_with_ris(migrated_settings, ris.port))
        job = add_job(session, JobState.DELIVERING)
        delivery = add_hl7_delivery(session, migrated_settings, job, DeliveryState.PENDING)
        deliver.apply(args=(str(delivery.id),)).get()
    reload(session, delivery)
    reload(session, job)
    assert delivery.state is DeliveryState.DELIVERED and delivery.attempts == 1
    assert job.state is JobState.DONE and job.finished_at is not None
    assert len(ris.messages) == 1 and job.id.hex[:20] in ris.messages[0]


def test_ris_answering_ae_schedules_a_retry_with_the_same_message(
    session: Session, migrated_settings: Settings
) -> None:
    from workers.tasks.deliver import deliver

    with mllp_ris(lambda message, seen: "AE" if seen == 1 else "AA") as ris:
        make_celery(_settings_with_ris(migrated_settings, ris.port))
        job = add_job(session, JobState.DELIVERING)
        delivery = add_hl7_delivery(session, migrated_settings, job, DeliveryState.PENDING)
        before = utcnow()
        deliver.apply(args=(str(delivery.id),)).get()
        reload(session, delivery)
        assert delivery.state is DeliveryState.PENDING
        assert delivery.last_error_code == "hl7.nack.ae"
        assert delivery.next_attempt_at > before
        # The retry, once due, sends the very same bytes and is accepted.
        delivery.next_attempt_at = utcnow()
        session.commit()
        deliver.apply(args=(str(delivery.id),)).get()
    reload(session, delivery)
    assert delivery.state is DeliveryState.DELIVERED and delivery.attempts == 2
    assert ris.messages[0] == ris.messages[1]


def test_a_newer_oru_waits_for_the_older_one_still_being_sent_then_goes(
    session: Session, migrated_settings: Settings
) -> None:
    """The study grew while its first ORU was on its way: the second waits (its task is sent again
    with a countdown) and reaches the RIS only after the first has settled."""
    from radassist.broker import IO_QUEUE, queue_depths
    from workers.tasks.deliver import deliver

    with mllp_ris() as ris:
        app = make_celery(_settings_with_ris(migrated_settings, ris.port))
        older = add_job(session, JobState.DELIVERING)
        newer = Job(study_id=older.study_id, state=JobState.DELIVERING, model_name="tiny",
                    created_at=older.created_at + dt.timedelta(seconds=30))
        session.add(newer)
        session.commit()
        first = add_hl7_delivery(session, migrated_settings, older, DeliveryState.SENDING)
        second = add_hl7_delivery(session, migrated_settings, newer, DeliveryState.PENDING)
        waiting = queue_depths(app, [IO_QUEUE], timeout=5.0)[IO_QUEUE]
        deliver.apply(args=(str(second.id),)).get()
        assert ris.messages == []
        reload(session, second)
        assert second.state is DeliveryState.PENDING and second.attempts == 0
        assert queue_depths(app, [IO_QUEUE], timeout=5.0)[IO_QUEUE] == waiting + 1  # tried again later
        first.state = DeliveryState.DELIVERED
        second.next_attempt_at = utcnow()
        session.commit()
        deliver.apply(args=(str(second.id),)).get()
    reload(session, second)
    assert second.state is DeliveryState.DELIVERED and len(ris.messages) == 1
    assert newer.id.hex[:20] in ris.messages[0]


def test_ris_answering_ar_fails_the_job_with_the_reason(session: Session, migrated_settings: Settings) -> None:
    from workers.tasks.deliver import deliver

    with mllp_ris(lambda message, seen: "AR") as ris:
        make_celery(_settings_with_ris(migrated_settings, ris.port))
        job = add_job(session, JobState.DELIVERING)
        delivery = add_hl7_delivery(session, migrated_settings, job, DeliveryState.PENDING)
        deliver.apply(args=(str(delivery.id),)).get()
    reload(session, delivery)
    reload(session, job)
    assert delivery.state is DeliveryState.FAILED and delivery.last_error_code == "hl7.nack.ar"
    assert job.state is JobState.FAILED and job.error_code == "hl7.nack.ar"
    assert "hl7 to ris" in (job.error_message or "")


def test_unreachable_ris_past_the_maximum_age_fails(session: Session, migrated_settings: Settings) -> None:
    from tests.conftest import free_port
    from workers.tasks.deliver import deliver

    settings = _settings_with_ris(migrated_settings, free_port())
    settings = settings.model_copy(update={"delivery": settings.delivery.model_copy(update={"max_age_seconds": 1.0})})
    make_celery(settings)
    job = add_job(session, JobState.DELIVERING)
    delivery = add_hl7_delivery(session, migrated_settings, job, DeliveryState.PENDING)
    delivery.first_attempt_at = utcnow() - dt.timedelta(seconds=5)
    session.commit()
    deliver.apply(args=(str(delivery.id),)).get()
    reload(session, delivery)
    assert delivery.state is DeliveryState.FAILED and delivery.last_error_code == "hl7.unreachable"
    assert "gave up after 1 attempts" in (delivery.last_error_message or "")
