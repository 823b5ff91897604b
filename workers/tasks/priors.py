"""Fetching priors (``io`` queue): wires the priors task to :mod:`radassist.prefetch`.

Start the search of a job still in ``priors``, search within the time limit, record the outcome
while moving the job (and the shadow jobs that waited for it) to ``queued``, and send the prepare
task only after that commit.  Network-bound
work: never on the gpu worker.  The prepare task is sent by name.
"""

from __future__ import annotations

import functools
import logging
import uuid

from celery import shared_task

from radassist.broker import PREPARE_TASK, PRIORS_TASK, send_job_tasks
from radassist.db.base import utcnow
from radassist.db.handles import handle_of_study, job_priorities
from radassist.logging import log_context
from radassist.prefetch.record import StartedSearch, record_search, start_search, waits_for_its_study_job
from radassist.prefetch.run import SearchOutcome, search_priors
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name=PRIORS_TASK, ignore_result=True)
def fetch_priors(self: RadAssistTask, job_id: str) -> None:
    if _waits(self, uuid.UUID(job_id)):
        logger.info("shadow job: takes the priors its study's own job is searching for")
        return
    started = _start(self, uuid.UUID(job_id))
    if started is None:
        logger.info("job is not waiting for its priors any more; nothing to do")
        return
    with self.session() as session:
        handle = handle_of_study(session, started.study_id)
    with log_context(job_id=started.job_id, study=handle):
        outcome = search_priors(self.settings, self.sessions, started)
        _record(self, started, outcome)


@retry_while_db_down("looking whether a shadow job waits for its study's search")
def _waits(task: RadAssistTask, job_id: uuid.UUID) -> bool:
    with task.session() as session:
        return waits_for_its_study_job(session, job_id)


@retry_while_db_down("starting the search for priors")
def _start(task: RadAssistTask, job_id: uuid.UUID) -> StartedSearch | None:
    with task.session() as session:
        started = start_search(session, job_id, utcnow())
        session.commit()
    return started


@retry_while_db_down("recording the priors found")
def _record(task: RadAssistTask, started: StartedSearch, outcome: SearchOutcome) -> None:
    with task.session() as session:
        queued = record_search(session, started, outcome.result, profile=outcome.profile,
                               study_ids=outcome.study_ids, now=utcnow())
        priorities = job_priorities(session, queued)
        after_commit(session, functools.partial(send_job_tasks, task.app, task.settings.broker_url, PREPARE_TASK,
                                                queued, priorities))
        session.commit()
