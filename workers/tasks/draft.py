"""Drafting (``gpu`` queue): wires the draft task to :mod:`radassist.drafting`.

Answer the questions to the model waiting (they go before routine drafts), then claim a batch,
prepare each job, draft the prepared ones in one model call, then store, requeue or fail each; a
stored draft's prepared pictures are kept for questions about it, and the build task is queued for
it only after its commit, and only when the safety gate did not hold it for review.  With the
answer task, the only task module that reaches the model package.  A worker without weights still
starts: the model is loaded on the first job, and each job fails with the reason.
"""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from radassist.broker import DRAFT_TASK
from radassist.db.base import utcnow
from radassist.drafting import record
from radassist.drafting.claim import ClaimedJob, claim_batch
from radassist.drafting.generate import draft_prepared, draft_row
from radassist.drafting.prepare import PreparedJob, prepare_job, read_comparison, read_order
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.logging import log_context
from radassist.models.base import DraftResult
from radassist.states import JobState
from radassist.store.prepared import keep, prepared_store
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit
from workers.tasks.answer import serve_questions_first

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name=DRAFT_TASK, ignore_result=True)
def draft_study(self: RadAssistTask, job_id: str) -> None:
    serve_questions_first(self)  # questions to the model go before routine drafts
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    claimed = _claim(self, uuid.UUID(job_id), takeover=redelivered)
    if not claimed:
        logger.info("job is not queued any more; nothing to do")
        return
    if len(claimed) > 1:
        logger.info("drafting %d queued jobs as one batch", len(claimed))
    try:
        prepared = [p for p in (_prepare(self, c) for c in claimed) if p is not None]
        for job, result in zip(prepared, draft_prepared(prepared, self.settings.model), strict=True):
            with log_context(job_id=job.claimed.job_id, study=job.claimed.study_handle):
                _settle(self, job, result)
    except SoftTimeLimitExceeded:
        timeout = PermanentFailure("drafting exceeded its time limit", code="model.timeout")
        for c in claimed:
            with log_context(job_id=c.job_id, study=c.study_handle):
                _fail(self, c, timeout)


@retry_while_db_down("claiming the job")
def _claim(task: RadAssistTask, job_id: uuid.UUID, takeover: bool = False) -> list[ClaimedJob]:
    with task.session() as session:
        claimed = claim_batch(session, job_id, task.settings, utcnow(), takeover=takeover)
        session.commit()
    return claimed


def _prepare(task: RadAssistTask, claimed: ClaimedJob) -> PreparedJob | None:
    """The job ready for the model, or None after failing it with the reason."""
    with log_context(job_id=claimed.job_id, study=claimed.study_handle):
        with task.session() as session:
            order = read_order(session, claimed.accession_hash)
            comparison = read_comparison(session, claimed.job_id, task.settings.storage.instances_dir)
        prepared = prepare_job(claimed, task.settings.model, order, comparison)
        if isinstance(prepared, RadAssistError):
            _fail(task, claimed, prepared)
            return None
    return prepared


def _settle(task: RadAssistTask, job: PreparedJob, result: DraftResult | RadAssistError) -> None:
    if isinstance(result, TransientFailure) and record.should_requeue(job.claimed, result):
        _requeue(task, job.claimed, result)
    elif isinstance(result, RadAssistError):
        _fail(task, job.claimed, result)
    else:
        _store(task, job, result)


@retry_while_db_down("storing the draft")
def _store(task: RadAssistTask, job: PreparedJob, result: DraftResult) -> None:
    from workers.tasks.build import build_outputs

    keep(prepared_store(task.settings), job.claimed.job_id, job.study, job.profile)  # for questions about it
    with task.session() as session:
        state = record.store_draft(session, job.claimed, draft_row(job, result), utcnow(), task.settings.safety)
        if state is JobState.DRAFTED:  # a held draft waits for a radiologist: nothing is built
            job_id = str(job.claimed.job_id)
            after_commit(session, lambda: build_outputs.apply_async((job_id,)))
        session.commit()


@retry_while_db_down("requeueing the job")
def _requeue(task: RadAssistTask, claimed: ClaimedJob, error: TransientFailure) -> None:
    with task.session() as session:
        delay = record.requeue(session, claimed, error)
        if delay is not None:
            job_id = str(claimed.job_id)
            after_commit(session, lambda: draft_study.apply_async((job_id,), countdown=delay))
        session.commit()


@retry_while_db_down("failing the job")
def _fail(task: RadAssistTask, claimed: ClaimedJob, error: RadAssistError) -> None:
    with task.session() as session:
        record.fail(session, claimed.job_id, claimed.study_id, error, utcnow(), claimed.attempts)
        session.commit()
