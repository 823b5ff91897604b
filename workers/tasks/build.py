"""Building outputs (``io`` queue): wires the build task to :mod:`radassist.outputs`.

The deliveries are queued only after the outbox rows are committed.
"""

from __future__ import annotations

import functools
import logging
import uuid

from celery import shared_task

from radassist.broker import BUILD_TASK, DELIVER_TASK, send_job_task
from radassist.db.base import utcnow
from radassist.db.handles import handle_of_job, job_priorities
from radassist.logging import log_context
from radassist.outputs.outbox import build_job_outputs
from radassist.outputs.recover import stat_drafted
from radassist.states import JobPriority
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name=BUILD_TASK, ignore_result=True)
def build_outputs(self: RadAssistTask, job_id: str) -> None:
    own = uuid.UUID(job_id)
    with self.session() as session:
        stat_first = stat_drafted(session, own)  # STAT jobs waiting go first, whatever message woke us
    for other in [*stat_first, own]:
        _build(self, other)


@retry_while_db_down("building the outputs")
def _build(task: RadAssistTask, job_id: uuid.UUID) -> None:
    with task.session() as session, log_context(job_id=job_id, study=handle_of_job(session, job_id)):
        pending = build_job_outputs(session, job_id, task.settings, task.outputs, utcnow())
        if pending is None:
            logger.info("job is not drafted any more; nothing to build")
            return
        priority = job_priorities(session, [job_id]).get(job_id, JobPriority.ROUTINE)
        for delivery_id in pending:
            after_commit(session, functools.partial(send_job_task, task.app, task.settings.broker_url, DELIVER_TASK,
                                                    delivery_id, priority))
        session.commit()
        logger.info("outputs built; %d deliveries queued", len(pending))
