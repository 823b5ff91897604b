"""Questions go before routine drafts: a drafting run answers the questions waiting before it claims its
batch (every broker), and on RabbitMQ and Redis the question's own message is delivered first."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kombu import Consumer
from sqlalchemy import select

from radassist.broker import (
    ANSWER_TASK,
    DRAFT_TASK,
    GPU_QUEUE,
    MAX_PRIORITY,
    PREPARE_TASK,
    celery_conf,
    client,
    task_priorities,
)
from radassist.config import Settings
from radassist.db.tables import ConversationTurn, Job
from radassist.states import JobState, TurnState
from tests.conversation.conftest import Drafted
from tests.drafting.conftest import prepare
from tests.drafting.test_draft_task import add_study, cr_copy


def test_a_drafting_run_answers_the_questions_waiting_before_it_claims_its_batch(
    make_drafted: Callable[..., Drafted], testdata: Path, tmp_path: Path,
) -> None:
    from workers.tasks.draft import draft_study

    drafted = make_drafted()
    with drafted.sessions() as session:
        job = add_study(session, drafted.settings, [cr_copy(testdata, tmp_path / "next")])
        job_id = job.id
    prepare(job_id)
    asked = drafted.ask("Is there a pneumothorax?")
    draft_study.apply(args=(str(job_id),)).get()  # a routine draft's message, taken first
    with drafted.sessions() as session:
        turn = session.get(ConversationTurn, asked.turn_id)
        drafted_job = session.get(Job, job_id)
        assert turn is not None and drafted_job is not None
        assert turn.state is TurnState.ANSWERED and drafted_job.state is JobState.DRAFTED
        assert drafted_job.started_at is not None and turn.answered_at is not None
        assert turn.answered_at <= drafted_job.started_at  # answered before the batch was claimed
    from workers.tasks.answer import answer_question

    answer_question.apply(args=(str(asked.turn_id),)).get()  # its own message, later, finds nothing to do
    with drafted.sessions() as session:
        again = session.scalars(select(ConversationTurn)).one()
        assert again.state is TurnState.ANSWERED and again.answered_at == turn.answered_at


def test_a_drafting_run_short_of_time_leaves_the_questions_to_their_own_message(
    make_drafted: Callable[..., Drafted], testdata: Path, tmp_path: Path,
) -> None:
    from workers.tasks.draft import draft_study

    # 90 % of 300 s minus the generation limit (250 s) and the slack leaves no time to answer first.
    drafted = make_drafted(queue_job_time_limit_seconds="300", model_generation_time_limit_s="250")
    with drafted.sessions() as session:
        job_id = add_study(session, drafted.settings, [cr_copy(testdata, tmp_path / "next")]).id
    prepare(job_id)
    asked = drafted.ask("Is there a pneumothorax?")
    draft_study.apply(args=(str(job_id),)).get()
    with drafted.sessions() as session:
        turn = session.get(ConversationTurn, asked.turn_id)
        assert turn is not None and turn.state is TurnState.PENDING
        assert session.get(Job, job_id).state is JobState.DRAFTED  # type: ignore[union-attr]


@pytest.mark.parametrize(("url", "question", "draft", "queue_arguments"), [
    ("amqp://guest:guest@mq//", MAX_PRIORITY, None, {"x-max-priority": MAX_PRIORITY}),
    ("redis://cache:6379/0", 0, 6, None),
    ("sqla+sqlite:////tmp/broker.sqlite3", None, None, None),
])
def test_each_broker_is_told_the_priorities(make_settings: Callable[..., Settings], url: str, question: int | None,
                                            draft: int | None, queue_arguments: dict[str, int] | None) -> None:
    conf = celery_conf(make_settings(queue_broker_url=url))
    routes = conf["task_routes"]
    assert routes[ANSWER_TASK]["queue"] == routes[DRAFT_TASK]["queue"] == GPU_QUEUE
    assert routes[ANSWER_TASK].get("priority") == question and routes[DRAFT_TASK].get("priority") == draft
    assert all(q.queue_arguments == queue_arguments for q in conf["task_queues"])  # STAT first in every queue
    # A job is prepared (cpu queue) with the priority its draft is sent with.
    assert routes[PREPARE_TASK].get("priority") == draft
    priorities = task_priorities(url)
    assert priorities.get(ANSWER_TASK) == question and priorities.get(DRAFT_TASK) == draft
    assert priorities.get(PREPARE_TASK) == draft


def _delivery_order(settings: Settings) -> list[str]:
    """Send five drafts, then a question, to ``gpu`` as the app does; the task names in delivery order."""
    app = client(settings)
    for _ in range(5):
        app.send_task(DRAFT_TASK, args=[str(uuid.uuid4())], queue=GPU_QUEUE)  # as the web's actions send it
    app.send_task(ANSWER_TASK, args=[str(uuid.uuid4())])
    queue = next(q for q in app.conf.task_queues if q.name == GPU_QUEUE)
    order: list[str] = []
    with app.connection_for_read() as connection:
        with Consumer(connection, [queue], accept=["json"], prefetch_count=1,
                      callbacks=[lambda _body, message: (order.append(message.headers["task"]), message.ack())]):
            while len(order) < 6:
                connection.drain_events(timeout=10)
    return order


def test_on_rabbitmq_the_question_is_delivered_before_the_drafts_queued_ahead(
    make_settings: Callable[..., Settings], rabbitmq_url: str,
) -> None:
    order = _delivery_order(make_settings(queue_broker_url=rabbitmq_url))
    assert order == [ANSWER_TASK] + [DRAFT_TASK] * 5


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    from tests.reliability.harness import PrivateRedis

    if not Path("/usr/bin/redis-server").exists():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_on_redis_the_question_is_delivered_before_the_drafts_queued_ahead(
    make_settings: Callable[..., Settings], redis_url: str,
) -> None:
    order = _delivery_order(make_settings(queue_broker_url=redis_url))
    assert order == [ANSWER_TASK] + [DRAFT_TASK] * 5
