"""The broker's names, and what every process asks of it: send a task by name, count a queue.

The task and queue names are the contract between the processes that send work (the web app's
admin actions, the sweep, the tasks themselves) and the workers that run it, so they live here,
below both: ``radassist.web`` sends and counts through this module and never imports ``workers``.
Three queues: ``gpu`` (drafting: one worker process per GPU), ``io`` (building outputs,
delivering them, the sweep) and ``cpu`` (measuring drafts against finals: work that loads model
libraries such as spaCy, kept out of the io worker).  Importing this module loads no Celery; :func:`client` does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from radassist.config import Settings

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

GPU_QUEUE = "gpu"
IO_QUEUE = "io"
CPU_QUEUE = "cpu"
QUEUES = (GPU_QUEUE, IO_QUEUE, CPU_QUEUE)

DRAFT_TASK = "radassist.draft_study"
BUILD_TASK = "radassist.build_outputs"
DELIVER_TASK = "radassist.deliver"
SWEEP_TASK = "radassist.sweep"
RETENTION_TASK = "radassist.retention"
MEASURE_TASK = "radassist.measure"
QUALITY_SWEEP_TASK = "radassist.quality_sweep"

TASK_QUEUES: dict[str, str] = {
    DRAFT_TASK: GPU_QUEUE,
    BUILD_TASK: IO_QUEUE,
    DELIVER_TASK: IO_QUEUE,
    SWEEP_TASK: IO_QUEUE,
    RETENTION_TASK: IO_QUEUE,
    MEASURE_TASK: CPU_QUEUE,
    QUALITY_SWEEP_TASK: IO_QUEUE,
}
"""Every task's queue: only drafting needs the GPU; measuring loads spaCy (and torch), so not on io."""


def celery_conf(settings: Settings) -> dict[str, Any]:
    """What a sending client and a worker must agree on: serializer, queues, routes, transport."""
    from kombu.entity import Queue

    return {
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_queues": [Queue(name) for name in QUEUES],  # type: ignore[no-untyped-call]
        "task_default_queue": IO_QUEUE,
        "task_routes": {name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        "broker_connection_retry_on_startup": True,
        # kombu's SQLAlchemy transport hands its options to create_engine(), so none for it.
        "broker_transport_options": {} if settings.broker_url.startswith("sqla+") else {"polling_interval": 0.5},
    }


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
