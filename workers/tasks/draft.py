"""Drafting (``gpu`` queue): wires the draft task to :mod:`radassist.drafting`.

Claim a batch, prepare each job, draft the prepared ones in one model call, then store, requeue or
fail each; the build task is queued for a stored draft only after its commit.  The only task
module that reaches the model package.  A worker without weights still starts: the model is loaded
on the first job, and each job fails with the reason.
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
from radassist.drafting.prepare import PreparedJob, prepare_job, read_order
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.logging import log_context
from radassist.models.base import DraftResult
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name=DRAFT_TASK, ignore_result=True)
def draft_study(self: RadAssistTask, job_id: str) -> None:
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
            with log_context(job_id=job.claimed.job_id, study_id=job.claimed.study_id):
                _settle(self, job, result)
    except SoftTimeLimitExceeded:
        timeout = PermanentFailure("drafting exceeded its time limit", code="model.timeout")
        for c in claimed:
            _fail(self, c, timeout)


@retry_while_db_down("claiming the job")
def _claim(task: RadAssistTask, job_id: uuid.UUID, takeover: bool = False) -> list[ClaimedJob]:
    with task.session() as session:
        claimed = claim_batch(session, job_id, task.settings, utcnow(), takeover=takeover)
        session.commit()
    return claimed


def _prepare(task: RadAssistTask, claimed: ClaimedJob) -> PreparedJob | None:
    """The job ready for the model, or None after failing it with the reason."""
    with log_context(job_id=claimed.job_id, study_id=claimed.study_id):
        with task.session() as session:
            order = read_order(session, claimed.accession_hash)
        prepared = prepare_job(claimed, task.settings.model, order)
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

    with task.session() as session:
        if record.store_draft(session, job.claimed, draft_row(job, result), utcnow()) and not job.claimed.shadow:
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
