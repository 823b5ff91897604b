"""STAT first in every queue: a job is STAT from its RIS order or its pipeline; the claims take STAT jobs
first (on every broker), and RabbitMQ delivers a STAT job's message before routine ones (after questions)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path

from celery import Celery
from kombu import Consumer
from sqlalchemy import select, update

from radassist.broker import ANSWER_TASK, DRAFT_TASK, GPU_QUEUE, client, send_priority
from radassist.config import PipelineSettings, Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Job, Order, Study
from radassist.identifiers import accession_hash
from radassist.ris.priority import is_stat, raise_to_stat
from radassist.states import JobPriority, JobState
from tests.drafting.conftest import prepare
from tests.drafting.test_draft_task import add_study, cr_copy, make_app  # noqa: F401  (make_app: a fixture)
from tests.unit.test_completion import receive

T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)


def test_order_priorities_that_mean_stat() -> None:
    assert all(is_stat(p) for p in ("S", "s", "STAT", "S^Stat^HL70078", " S "))
    assert not any(is_stat(p) for p in (None, "", "R", "A", "ASAP", "P", "T^Timing"))


def test_a_job_is_stat_from_its_order_or_its_pipeline(migrated_settings: Settings) -> None:
    from radassist.completion.claim import claim_all

    settings = migrated_settings.model_copy(update={"pipelines": (PipelineSettings(ae_title="ED", stat=True),)})
    factory = make_sessionmaker(settings)
    with factory() as session:  # the RIS said STAT for accession ACC1 (every study of receive() has it)
        session.add(Order(accession_number_hash=accession_hash("ACC1"), priority="S"))
        session.commit()
    receive(factory, "1.2.1", "1.2.1.1", T0)  # routine pipeline, STAT order
    with factory() as session:
        job_ids = claim_all(session, settings, now=T0 + dt.timedelta(seconds=60))
        session.execute(Order.__table__.delete())
        session.commit()
    receive(factory, "1.2.2", "1.2.2.1", T0)  # STAT pipeline, no order
    receive(factory, "1.2.3", "1.2.3.1", T0)  # routine pipeline, no order
    with factory() as session:
        session.execute(update(Study).where(Study.study_instance_uid == "1.2.2").values(called_ae_title="ED"))
        job_ids += claim_all(session, settings, now=T0 + dt.timedelta(seconds=60))
        session.commit()
        jobs = {session.get(Job, j).study.study_instance_uid: session.get(Job, j) for j in job_ids}  # type: ignore[union-attr]
        assert {uid: job.priority for uid, job in jobs.items()} == {
            "1.2.1": JobPriority.STAT, "1.2.2": JobPriority.STAT, "1.2.3": JobPriority.ROUTINE}
        # An order saying STAT that arrives after completion raises the study's unfinished job.
        assert raise_to_stat(session, jobs["1.2.3"].study_id) == 1
        session.commit()
        session.refresh(jobs["1.2.3"])
        assert jobs["1.2.3"].priority is JobPriority.STAT


def test_the_stat_job_is_drafted_before_the_routine_jobs_queued_ahead(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.draft import draft_study

    _, settings = make_app(model_batch_size="1")
    maker = make_sessionmaker(settings)
    with maker() as session:
        routine = [add_study(session, settings, [cr_copy(testdata, tmp_path / f"r{i}")]).id for i in range(3)]
        stat = add_study(session, settings, [cr_copy(testdata, tmp_path / "stat")])
        stat.priority = JobPriority.STAT
        session.commit()
        stat_id = stat.id
    prepare(routine[0])  # a routine job's message: the cpu worker prepares the STAT job waiting first
    with maker() as session:
        assert session.get(Job, stat_id).state is JobState.PREPARED  # type: ignore[union-attr]
        assert session.get(Job, routine[1]).state is JobState.QUEUED  # type: ignore[union-attr]
    prepare(*routine[1:])
    # The embedded broker has no priorities: the oldest routine job's message wakes the worker first.
    # Its drafting run takes the STAT job first (batches of one), then its own job, then drains the rest.
    draft_study.apply(args=(str(routine[0]),)).get()
    with maker() as session:
        jobs = {j.id: j for j in session.scalars(select(Job))}
    assert all(job.state is JobState.DRAFTED for job in jobs.values())
    assert len({job.started_at for job in jobs.values()}) == 1  # one run: its batches share started_at
    drafted = sorted(jobs.values(), key=lambda job: job.drafted_at)  # type: ignore[arg-type,return-value]
    assert [job.id for job in drafted] == [stat_id, *routine]


def test_a_message_whose_job_stat_jobs_pushed_out_drafts_it_in_the_next_batch(
    make_app: Callable[..., tuple[Celery, Settings]], testdata: Path, tmp_path: Path  # noqa: F811
) -> None:
    """Even a job in backoff (handed back after a transient failure), which the run's later claims
    leave to its own message: this message is its own."""
    from workers.tasks.draft import draft_study

    _, settings = make_app(model_batch_size="1")
    maker = make_sessionmaker(settings)
    with maker() as session:
        own = add_study(session, settings, [cr_copy(testdata, tmp_path / "own")])
        stat = add_study(session, settings, [cr_copy(testdata, tmp_path / "stat")])
        stat.priority = JobPriority.STAT
        session.commit()
        own_id, stat_id = own.id, stat.id
    prepare(own_id, stat_id)
    with maker() as session:
        session.execute(update(Job).where(Job.id == own_id).values(error_code="model.busy"))
        session.commit()
    draft_study.apply(args=(str(own_id),)).get()
    with maker() as session:
        jobs = {j.id: j for j in session.scalars(select(Job))}
    assert jobs[stat_id].state is JobState.DRAFTED and jobs[own_id].state is JobState.DRAFTED
    assert jobs[stat_id].drafted_at < jobs[own_id].drafted_at  # type: ignore[operator]


def _delivery_order(app: Celery, sends: list[tuple[str, str]]) -> list[str]:
    """Send each (task, job priority) to ``gpu`` with its send priority; the job priorities in delivery order."""
    for task, priority in sends:
        app.send_task(task, args=[priority], **send_priority(app.conf.broker_url, task, priority))
    queue = next(q for q in app.conf.task_queues if q.name == GPU_QUEUE)
    order: list[str] = []
    with app.connection_for_read() as connection:
        with Consumer(connection, [queue], accept=["json"], prefetch_count=1,
                      callbacks=[lambda body, message: (order.append(body[0][0]), message.ack())]):
            while len(order) < len(sends):
                connection.drain_events(timeout=10)
    return order


def test_on_rabbitmq_questions_then_stat_then_routine(make_settings: Callable[..., Settings],
                                                      rabbitmq_url: str) -> None:
    app = client(make_settings(queue_broker_url=rabbitmq_url))
    sends = [(DRAFT_TASK, "routine")] * 3 + [(DRAFT_TASK, "stat"), (ANSWER_TASK, "question")]
    assert _delivery_order(app, sends) == ["question", "stat", "routine", "routine", "routine"]


def test_send_priorities_per_broker() -> None:
    amqp, redis = "amqp://guest:guest@mq//", "redis://cache:6379/0"
    assert send_priority(amqp, DRAFT_TASK, "stat")["priority"] > send_priority(amqp, DRAFT_TASK, "routine")["priority"]
    assert send_priority(amqp, ANSWER_TASK)["priority"] > send_priority(amqp, DRAFT_TASK, "stat")["priority"]
    assert send_priority(redis, ANSWER_TASK)["priority"] < send_priority(redis, DRAFT_TASK, "stat")["priority"] \
        < send_priority(redis, DRAFT_TASK, "routine")["priority"]  # lower first on Redis
    assert send_priority("sqla+sqlite:////tmp/b.sqlite3", DRAFT_TASK, "stat") == {}


def test_the_worklist_shows_the_priority(migrated_settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from radassist.web.app import create_app
    from tests.web.support import add_user, bearer

    factory = make_sessionmaker(migrated_settings)
    receive(factory, "1.2.9", "1.2.9.1", T0)
    with factory() as session:
        study = session.scalars(select(Study)).one()
        session.add(Job(id=uuid.uuid4(), study_id=study.id, state=JobState.QUEUED, model_name="m",
                        priority=JobPriority.STAT))
        session.commit()
    token = add_user(migrated_settings, "admin", "admin")
    with TestClient(create_app(migrated_settings), headers=bearer(token)) as web:
        (item,) = web.get("/api/studies").json()["items"]
        assert item["job_priority"] == "stat"
        assert '<span class="badge priority-stat"' in web.get("/").text
