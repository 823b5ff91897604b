"""Worker process hooks: a fresh DB engine after fork, log context per task."""

from __future__ import annotations

from typing import Any

from celery import signals

from radassist.logging import job_id_var, study_var, task_id_var
from workers.base import reset_sessionmaker


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
