"""The broker's names, and what every process asks of it: send a task by name, count a queue.

The task and queue names are the contract between the processes that send work (the web app's
admin actions, the sweep, the tasks themselves) and the workers that run it, so they live here,
below both: ``radassist.web`` sends and counts through this module and never imports ``workers``.
Three queues: ``gpu`` (drafting and questions to the model: one worker process per GPU), ``io``
(fetching priors, building outputs, delivering them, the sweeps) and ``cpu`` (preparing each job's
pictures and prompt inputs ahead of the GPU, and measuring drafts against finals: work that loads
model libraries such as spaCy, kept out of the io worker).  A job is sent to ``cpu`` to be prepared
with the priority its draft is sent with, so an order of priorities holds in both queues.
Importing this module loads no Celery; :func:`client` does.

Questions to the model go first, then STAT jobs' work, then routine work (:func:`send_priority`, one
rule for every task of a job, in every queue): on RabbitMQ every queue is declared with
``x-max-priority`` and the message carries the priority (higher first); on Redis (where the lowest
number comes first) routine work is sent at a lower step than STAT work, and STAT lower than
questions.  Celery's SQLAlchemy transport (the embedded broker) has no priorities, nor does a worker
consuming two of its queues serve one first (kombu takes turns between them); there, and everywhere,
the claims keep the order: a drafting run answers the questions waiting before it claims its batch
(:mod:`radassist.conversation.serve`), and it, the build and the delivery take STAT jobs waiting
before the job of the message that woke them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from radassist.config import Settings

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

GPU_QUEUE = "gpu"
IO_QUEUE = "io"
CPU_QUEUE = "cpu"
QUEUES = (GPU_QUEUE, IO_QUEUE, CPU_QUEUE)

PRIORS_TASK = "radassist.fetch_priors"
PREPARE_TASK = "radassist.prepare_job"
DRAFT_TASK = "radassist.draft_study"
BUILD_TASK = "radassist.build_outputs"
DELIVER_TASK = "radassist.deliver"
SWEEP_TASK = "radassist.sweep"
RETENTION_TASK = "radassist.retention"
ANSWER_TASK = "radassist.answer_question"
MEASURE_TASK = "radassist.measure"
QUALITY_SWEEP_TASK = "radassist.quality_sweep"

TASK_QUEUES: dict[str, str] = {
    PRIORS_TASK: IO_QUEUE,
    PREPARE_TASK: CPU_QUEUE,
    DRAFT_TASK: GPU_QUEUE,
    BUILD_TASK: IO_QUEUE,
    DELIVER_TASK: IO_QUEUE,
    SWEEP_TASK: IO_QUEUE,
    RETENTION_TASK: IO_QUEUE,
    ANSWER_TASK: GPU_QUEUE,
    MEASURE_TASK: CPU_QUEUE,
    QUALITY_SWEEP_TASK: IO_QUEUE,
}
"""Every task's queue: only drafting and answering questions need the GPU; preparing a job's pictures
(decoding DICOM, resizing) is CPU work done ahead of the GPU; measuring loads spaCy (and torch), so
it is not on io."""


MAX_PRIORITY = 9
"""RabbitMQ's ``x-max-priority`` of every queue (priorities 0-9, higher first)."""

JOB_TASKS = (PRIORS_TASK, PREPARE_TASK, DRAFT_TASK, BUILD_TASK, DELIVER_TASK)
"""Tasks that carry one job's work, sent with that job's priority (:func:`send_priority`)."""

_AMQP = {"question": MAX_PRIORITY, "stat": 6, "routine": 0}
"""RabbitMQ: higher first."""
_REDIS = {"question": 0, "stat": 3, "routine": 6}
"""kombu's Redis priority steps are 0, 3, 6 and 9, lowest first; a message without one counts as 0."""


def _is_amqp(broker_url: str) -> bool:
    return broker_url.partition("://")[0].lower() in ("amqp", "amqps", "pyamqp")


def _is_redis(broker_url: str) -> bool:
    return broker_url.partition("://")[0].lower() in ("redis", "rediss", "sentinel")


def task_priorities(broker_url: str) -> dict[str, int]:
    """The priority each task is routed with on this broker (a routine job's, for job tasks), so
    questions go before drafts; :func:`send_priority` raises it for a STAT job."""
    if _is_amqp(broker_url):
        return {ANSWER_TASK: _AMQP["question"]}  # others: 0, the lowest
    if _is_redis(broker_url):
        return {ANSWER_TASK: _REDIS["question"], **dict.fromkeys(JOB_TASKS, _REDIS["routine"])}
    return {}


def send_priority(broker_url: str, task: str, job_priority: str = "routine") -> dict[str, int]:
    """The ``apply_async``/``send_task`` options that send ``task`` of a job of ``job_priority``
    (``routine`` or ``stat``) at its place: questions first, then STAT, then routine work.

    Empty on the embedded broker, which has no priorities: there the claims take STAT jobs first.
    """
    table = _AMQP if _is_amqp(broker_url) else _REDIS if _is_redis(broker_url) else None
    if table is None:
        return {}
    if task == ANSWER_TASK:
        return {"priority": table["question"]}
    return {"priority": table["stat" if str(job_priority) == "stat" else "routine"]}


def send_job_task(app: Celery, broker_url: str, task: str, item_id: object, job_priority: str = "routine",
                  countdown: float | None = None) -> None:
    """Send ``task`` for one piece of a job's work (the job's id, or a delivery's for ``deliver``)
    at the job's place (:func:`send_priority`), after ``countdown`` seconds when given.

    Every sender of a job's work goes through here (the listener's timer, the sweep, the tasks that
    hand a job on), so no message of a STAT job leaves at a routine job's priority.
    """
    options: dict[str, Any] = send_priority(broker_url, task, job_priority)
    if countdown is not None:
        options["countdown"] = countdown
    app.send_task(task, (str(item_id),), **options)


def send_job_tasks(app: Celery, broker_url: str, task: str, item_ids: Iterable[object],
                   priorities: Mapping[Any, str]) -> None:
    """:func:`send_job_task` for each id, at the priority ``priorities`` gives it (routine when none)."""
    for item_id in item_ids:
        send_job_task(app, broker_url, task, item_id, priorities.get(item_id, "routine"))


def celery_conf(settings: Settings) -> dict[str, Any]:
    """What a sending client and a worker must agree on: serializer, queues, routes, transport."""
    from kombu.entity import Queue

    priorities = task_priorities(settings.broker_url)
    priority_queue = {"x-max-priority": MAX_PRIORITY} if _is_amqp(settings.broker_url) else None
    queues = [Queue(name, queue_arguments=priority_queue) for name in QUEUES]  # type: ignore[no-untyped-call]
    return {
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_queues": queues,
        "task_default_queue": IO_QUEUE,
        "task_routes": {name: {"queue": queue, **({"priority": priorities[name]} if name in priorities else {})}
                        for name, queue in TASK_QUEUES.items()},
        "broker_connection_retry_on_startup": True,
        # kombu's SQLAlchemy transport hands its options to create_engine(), so none for it.
        "broker_transport_options": {} if settings.broker_url.startswith("sqla+") else {"polling_interval": 0.5},
        **_embedded_transport(settings),
    }


def _embedded_transport(settings: Settings) -> dict[str, str]:
    """On the embedded broker with ``[queue] embedded_wakeups``, our transport that wakes idle workers
    (:mod:`radassist.embedded_broker`): named by import path, with the URL it serves."""
    url = settings.broker_url
    if not url.startswith("sqla+") or not settings.queue.embedded_wakeups:
        return {}
    from radassist.embedded_broker import TRANSPORT, check_compatible

    if missing := check_compatible():
        raise RuntimeError(f"kombu lacks what the embedded broker's wake-ups use ({', '.join(missing)}); set "
                           "[queue] embedded_wakeups = false to run its transport as shipped")
    return {"broker_url": url.removeprefix("sqla+"), "broker_transport": TRANSPORT}


STOCK_POLLING_S = 1.0
"""kombu's own polling interval of its SQLAlchemy transport."""


def tune_embedded_transport(settings: Settings) -> None:
    """On the embedded broker, poll every ``[queue] embedded_polling_seconds``.

    kombu's SQLAlchemy transport has no wake-up: a worker that holds its one prefetched message,
    or found the queue empty, sleeps its ``polling_interval`` before it looks again (1 s as
    shipped: one message a second per worker, whatever the work).  That transport hands every
    transport option to ``create_engine()``, so the interval cannot be given as one; it is the
    transport class's documented ``polling_interval`` attribute, set here and nowhere else.
    """
    interval = settings.queue.embedded_polling_seconds
    if not settings.broker_url.startswith("sqla+") or interval == STOCK_POLLING_S:
        return
    from kombu.transport import sqlalchemy as sqla_transport

    if not isinstance(getattr(sqla_transport.Transport, "polling_interval", None), (int, float)):
        raise RuntimeError("kombu's SQLAlchemy transport has no polling_interval any more; set "
                           f"[queue] embedded_polling_seconds = {STOCK_POLLING_S} to run it as shipped")
    sqla_transport.Transport.polling_interval = interval


def client(settings: Settings) -> Celery:
    """A Celery app that sends tasks by name and asks the broker and workers; it runs no task."""
    from celery import Celery

    app = Celery("radassist", broker=settings.broker_url, set_as_current=False)
    app.conf.update(celery_conf(settings))
    return app


def queue_depths(app: Celery, queues: Iterable[str], timeout: float | None = None) -> dict[str, int]:
    """Messages waiting in each queue, by a passive declare; a queue the broker does not know holds 0.

    Raises when the broker cannot be reached (callers decide what an unknown depth means).
    """
    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
        channel = conn.default_channel
        for name in queues:
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except Exception as exc:  # noqa: BLE001 -- Redis: no key for an empty queue; AMQP: never declared
                logger.debug("queue %s: %s", name, type(exc).__name__)
                depths[name] = 0
                channel = conn.channel()  # a failed passive declare closes the AMQP channel
    return depths
