"""Worker process hooks: a fresh DB engine after fork, log context per task, jobs handed back and the
heartbeat started at start."""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from radassist.logging import job_id_var, study_var, task_id_var
from workers.base import reset_sessionmaker
from workers.heartbeat import Heartbeat
from workers.restart import hand_back_on_start

logger = logging.getLogger(__name__)


@signals.worker_process_init.connect
def _fresh_process(**_: Any) -> None:
    reset_sessionmaker()


@signals.task_prerun.connect
def _bind_context(task_id: str | None = None, **_: Any) -> None:
    # Tasks bind the job id and the study handle themselves (log_context) once they have loaded their row.
    task_id_var.set(task_id or "-")


@signals.task_postrun.connect
def _clear_context(**_: Any) -> None:
    task_id_var.set("-")
    job_id_var.set("-")
    study_var.set("-")


@signals.worker_ready.connect
def _hand_back_what_this_worker_held(sender: Any = None, **_: Any) -> None:
    queues = [q.name for q in sender.task_consumer.queues]
    # A failure here must not stop the worker: the sweep hands the jobs back later anyway.
    try:
        hand_back_on_start(sender.app, sender.hostname, queues)
    except Exception:  # noqa: BLE001 - logged; the sweep is the backstop
        logger.exception("could not hand back the jobs this worker held before it started again")
    # Reported in after the hand-back: its row looks alive again only once its old jobs are back.
    Heartbeat(sender.app.radassist_settings, sender.hostname, queues).start()
