"""Drafting (``gpu`` queue): wires the draft task to :mod:`radassist.drafting`.

A message whose job is no longer prepared (drafted as another's batch mate) ends at a read.  Else
answer the questions to the model waiting (they go before routine drafts), then claim a batch of
prepared jobs (STAT jobs waiting first, even ahead of the message's own routine job, which a next
batch of the run then takes; the embedded broker has no message priorities), load each one's inputs from the prepared store (never the received files: a GPU
machine needs no shared disk), draft them in one model call, then store, requeue or fail them all
in one transaction, each fenced by its own claim; the build task is queued for a stored draft only
after that commit, and only when the safety gate did not hold it for review.  A job whose inputs
are gone goes back to be prepared again.  While prepared jobs wait, the run goes on with the next
batch (questions first again, then STAT jobs), within a time budget; every batch of the run shares its
``started_at``, so a redelivered message takes them all over.  With the answer task, the only task
module that reaches the model package.  A worker without weights still starts: the model is loaded on the first job,
and each job fails with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from radassist.broker import BUILD_TASK, DRAFT_TASK, PREPARE_TASK, send_job_task
from radassist.db.base import utcnow
from radassist.drafting import record
from radassist.drafting.claim import (
    ClaimedJob,
    claim_batch,
    claim_next_batch,
    is_prepared,
    job_left_waiting,
    record_holder,
)
from radassist.drafting.generate import draft_prepared, draft_row
from radassist.drafting.prepare import PreparedJob, from_kept
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.logging import log_context
from radassist.models.base import DraftResult
from radassist.states import JobPriority, JobState
from radassist.store.prepared import prepared_store
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit
from workers.tasks.answer import serve_questions_first

logger = logging.getLogger(__name__)

DRAIN_BUDGET_S = 60.0
"""A drafting run goes on with the next prepared jobs (answering the questions waiting between
batches) for at most this long, or a quarter of the time limit: the GPU needs no message, nor a
poll of the broker, between batches while work is waiting."""

INPUTS_MISSING = PermanentFailure("the job's prepared inputs could not be read from the prepared store",
                                  code="draft.inputs_missing")


@shared_task(base=RadAssistTask, bind=True, name=DRAFT_TASK, ignore_result=True)
def draft_study(self: RadAssistTask, job_id: str) -> None:
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    own = uuid.UUID(job_id)
    if not redelivered and not _waiting(self, own):
        logger.info("job is not prepared any more; nothing to do")
        return
    serve_questions_first(self)  # questions to the model go before routine drafts
    claimed = _claim(self, own, takeover=redelivered)
    if not claimed:
        logger.info("job is not prepared any more; nothing to do")
        return
    started_at, model_name = claimed[0].started_at, claimed[0].model_name
    own_waiting = job_left_waiting(claimed, own)  # STAT jobs waiting filled the first batch
    deadline = time.monotonic() + min(DRAIN_BUDGET_S, self.settings.queue.job_time_limit_seconds * 0.25)
    while claimed:
        if not _draft_batch(self, claimed) or time.monotonic() >= deadline or started_at is None:
            break  # a job still waiting keeps its message or is re-sent by the sweep
        serve_questions_first(self)
        # STAT jobs first still, then the message's own job if it is left waiting (even one in backoff)
        claimed = _claim(self, own, started_at=started_at) if own_waiting else []
        own_waiting = job_left_waiting(claimed, own)
        claimed = claimed or _claim_next(self, model_name, started_at)


def _draft_batch(task: RadAssistTask, claimed: list[ClaimedJob]) -> bool:
    """Draft one claimed batch and write its outcome; False when the run's time ran out."""
    if len(claimed) > 1:
        logger.info("drafting %d prepared jobs as one batch", len(claimed))
    try:
        loaded = _load(task, claimed)
        prepared = [job for job in loaded if isinstance(job, PreparedJob)]
        results = draft_prepared(prepared, task.settings.model)
        _settle(task, prepared, results, [c for c in loaded if isinstance(c, ClaimedJob)])
    except SoftTimeLimitExceeded:
        timeout = PermanentFailure("drafting exceeded its time limit", code="model.timeout")
        _settle(task, [], [], claimed, error=timeout)
        return False
    return True


@retry_while_db_down("reading the job")
def _waiting(task: RadAssistTask, job_id: uuid.UUID) -> bool:
    with task.session() as session:
        return is_prepared(session, job_id)


@retry_while_db_down("claiming the next batch")
def _claim_next(task: RadAssistTask, model_name: str, started_at: dt.datetime) -> list[ClaimedJob]:
    with task.session() as session:
        claimed = claim_next_batch(session, model_name, task.settings, started_at)
        record_holder(session, [c.job_id for c in claimed], task.request.hostname)
        session.commit()
    return claimed


@retry_while_db_down("claiming the job")
def _claim(task: RadAssistTask, job_id: uuid.UUID, takeover: bool = False, *,
           started_at: dt.datetime | None = None) -> list[ClaimedJob]:
    """Claim the message's batch, as the start of a run or (``started_at``) within a running one."""
    with task.session() as session:
        claimed = claim_batch(session, job_id, task.settings, started_at or utcnow(), takeover=takeover)
        record_holder(session, [c.job_id for c in claimed], task.request.hostname)
        session.commit()
    return claimed


def _load(task: RadAssistTask, claimed: list[ClaimedJob]) -> list[PreparedJob | ClaimedJob]:
    """Each job ready for the model, or its claim alone when its kept inputs cannot be read."""
    store = prepared_store(task.settings)
    loaded: list[PreparedJob | ClaimedJob] = []
    for job in claimed:
        try:
            kept = store.load(job.job_id)
        except Exception as exc:  # noqa: BLE001 -- unreadable inputs are prepared again, never fatal here
            with log_context(job_id=job.job_id, study=job.study_handle):
                logger.warning("the prepared inputs could not be read (%s)", type(exc).__name__)
            kept = None
        loaded.append(from_kept(job, kept) if kept is not None else job)
    return loaded


@retry_while_db_down("storing the drafts")
def _settle(task: RadAssistTask, prepared: Sequence[PreparedJob], results: Sequence[DraftResult | RadAssistError],
            unloaded: Sequence[ClaimedJob], *, error: RadAssistError | None = None) -> None:
    """Write the batch's outcome in one transaction: each draft stored (or job requeued or failed)
    only while its own claim holds; follow-up tasks are sent after the commit."""
    sends: list[tuple[str, str, float | None, JobPriority]] = []
    now = utcnow()
    with task.session() as session:
        for job, result in zip(prepared, results, strict=True):
            with log_context(job_id=job.claimed.job_id, study=job.claimed.study_handle):
                if isinstance(result, TransientFailure) and record.should_requeue(job.claimed, result):
                    delay = record.requeue(session, job.claimed, result)
                    if delay is not None:
                        sends.append((DRAFT_TASK, str(job.claimed.job_id), delay, job.claimed.priority))
                elif isinstance(result, RadAssistError):
                    record.fail(session, job.claimed.job_id, job.claimed.study_id, result, now, job.claimed.attempts)
                else:
                    row = draft_row(job, result)
                    state = record.store_draft(session, job.claimed, row, now, task.settings.safety)
                    if state is JobState.DRAFTED:  # a held draft waits for a radiologist: nothing is built
                        sends.append((BUILD_TASK, str(job.claimed.job_id), None, job.claimed.priority))
        for claimed in unloaded:
            with log_context(job_id=claimed.job_id, study=claimed.study_handle):
                if error is not None:
                    record.fail(session, claimed.job_id, claimed.study_id, error, now, claimed.attempts)
                elif claimed.attempts < record.MAX_TRANSIENT_ATTEMPTS and record.prepare_again(session, claimed):
                    sends.append((PREPARE_TASK, str(claimed.job_id), None, claimed.priority))
                else:
                    record.fail(session, claimed.job_id, claimed.study_id, INPUTS_MISSING, now, claimed.attempts)
        after_commit(session, lambda: _send(task, sends))
        session.commit()


def _send(task: RadAssistTask, sends: list[tuple[str, str, float | None, JobPriority]]) -> None:
    for name, job_id, delay, priority in sends:
        send_job_task(task.app, task.settings.broker_url, name, job_id, priority, countdown=delay)
