"""The Celery app, built from Settings by the entry point (no module-level app, no import-time config)."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery

from radassist.broker import (
    QUALITY_SWEEP_TASK,
    RETENTION_TASK,
    SWEEP_TASK,
    celery_conf,
    tune_embedded_transport,
)
from radassist.config import Settings
from radassist.store.private import private_dirs

TASK_MODULES = [
    "workers.tasks.sweep", "workers.tasks.prepare", "workers.tasks.draft", "workers.tasks.build", "workers.tasks.deliver",
    "workers.tasks.retention", "workers.tasks.priors", "workers.tasks.answer", "workers.tasks.measure",
]


def make_celery(settings: Settings) -> Celery:
    """A Celery app whose tasks can reach ``settings`` as ``app.radassist_settings``."""
    private_dirs(settings.storage.path)
    tune_embedded_transport(settings)
    app = Celery("radassist", broker=settings.broker_url, include=TASK_MODULES, set_as_current=True)
    time_limit = settings.queue.job_time_limit_seconds
    app.conf.update(celery_conf(settings))
    app.conf.update(
        # A job is acknowledged only when it has finished; a worker that dies mid-draft hands it back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=time_limit,
        task_soft_time_limit=int(time_limit * 0.9),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_schedule={
            "sweep": {
                "task": SWEEP_TASK,
                "schedule": timedelta(seconds=settings.queue.sweep_interval_seconds),
                "options": {"expires": settings.queue.sweep_interval_seconds * 5},
            },
            "retention": {
                "task": RETENTION_TASK,
                "schedule": timedelta(seconds=settings.retention.interval_seconds),
                "options": {"expires": settings.retention.interval_seconds},
            },
            "quality": {
                "task": QUALITY_SWEEP_TASK,
                "schedule": timedelta(seconds=settings.quality.measure_interval_seconds),
                "options": {"expires": settings.quality.measure_interval_seconds * 5},
            },
        },
        beat_schedule_filename=str(settings.storage.path / "celerybeat-schedule"),
    )
    app.radassist_settings = settings
    return app
