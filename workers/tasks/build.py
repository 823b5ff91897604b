"""Building outputs (``io`` queue): wires the build task to :mod:`radassist.outputs`.

The deliveries are queued only after the outbox rows are committed.
"""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from radassist.broker import BUILD_TASK
from radassist.db.base import utcnow
from radassist.db.handles import handle_of_job
from radassist.logging import log_context
from radassist.outputs.outbox import build_job_outputs
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name=BUILD_TASK, ignore_result=True)
def build_outputs(self: RadAssistTask, job_id: str) -> None:
    _build(self, uuid.UUID(job_id))


@retry_while_db_down("building the outputs")
def _build(task: RadAssistTask, job_id: uuid.UUID) -> None:
    from workers.tasks.deliver import deliver

    with task.session() as session, log_context(job_id=job_id, study=handle_of_job(session, job_id)):
        pending = build_job_outputs(session, job_id, task.settings, task.outputs, utcnow())
        if pending is None:
            logger.info("job is not drafted any more; nothing to build")
            return
        after_commit(session, lambda: [deliver.apply_async((str(i),)) for i in pending])
        session.commit()
        logger.info("outputs built; %d deliveries queued", len(pending))
