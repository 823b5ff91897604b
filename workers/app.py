"""The Celery app, built from Settings by the entry point (no module-level app, no import-time config)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from celery import Celery
from kombu.entity import Queue

from radassist.config import Settings
from radassist.store.private import private_dirs

logger = logging.getLogger(__name__)

GPU_QUEUE = "gpu"
IO_QUEUE = "io"

TASK_MODULES = ["workers.tasks.sweep", "workers.tasks.draft", "workers.tasks.deliver", "workers.tasks.retention"]


def make_celery(settings: Settings) -> Celery:
    """A Celery app whose tasks can reach ``settings`` as ``app.radassist_settings``."""
    private_dirs(settings.storage.path)
    app = Celery("radassist", broker=settings.broker_url, include=TASK_MODULES, set_as_current=True)
    time_limit = settings.queue.job_time_limit_seconds
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        # A job is acknowledged only when it has finished; a worker that dies mid-draft hands it back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(GPU_QUEUE), Queue(IO_QUEUE)],
        task_default_queue=IO_QUEUE,
        task_routes={"radassist.draft_study": {"queue": GPU_QUEUE}},
        task_time_limit=time_limit,
        task_soft_time_limit=int(time_limit * 0.9),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        # kombu's SQLAlchemy transport hands its options to create_engine(), so none for it.
        broker_transport_options={} if settings.broker_url.startswith("sqla+") else {"polling_interval": 0.5},
        beat_schedule={
            "sweep": {
                "task": "radassist.sweep",
                "schedule": timedelta(seconds=settings.queue.sweep_interval_seconds),
                "options": {"queue": IO_QUEUE, "expires": settings.queue.sweep_interval_seconds * 5},
            },
            "retention": {
                "task": "radassist.retention",
                "schedule": timedelta(seconds=settings.retention.interval_seconds),
                "options": {"queue": IO_QUEUE, "expires": settings.retention.interval_seconds},
            },
        },
        beat_schedule_filename=str(settings.storage.path / "celerybeat-schedule"),
    )
    app.radassist_settings = settings
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
