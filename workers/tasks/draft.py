"""Drafting (``gpu`` queue): wires the draft task to :mod:`radassist.drafting`.

Answer the questions to the model waiting (they go before routine drafts), then claim a batch of
prepared jobs, load each one's inputs from the prepared store (never the received files: a GPU
machine needs no shared disk), draft them in one model call, then store, requeue or fail them all
in one transaction, each fenced by its own claim; the build task is queued for a stored draft only
after that commit, and only when the safety gate did not hold it for review.  A job whose inputs
are gone goes back to be prepared again.  With the answer task, the only task module that reaches
the model package.  A worker without weights still starts: the model is loaded on the first job,
and each job fails with the reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from radassist.broker import BUILD_TASK, DRAFT_TASK, PREPARE_TASK, send_priority
from radassist.db.base import utcnow
from radassist.drafting import record
from radassist.drafting.claim import ClaimedJob, claim_batch, job_left_waiting
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

INPUTS_MISSING = PermanentFailure("the job's prepared inputs could not be read from the prepared store",
                                  code="draft.inputs_missing")


STAT_ROUNDS = 4
"""Batches of STAT jobs a routine job's message drafts before its own; then the sweep re-sends it."""


@shared_task(base=RadAssistTask, bind=True, name=DRAFT_TASK, ignore_result=True)
def draft_study(self: RadAssistTask, job_id: str) -> None:
    serve_questions_first(self)  # questions to the model go before routine drafts
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    for _ in range(STAT_ROUNDS):  # STAT jobs waiting go first, whatever message woke the worker
        claimed = _claim(self, uuid.UUID(job_id), takeover=redelivered)
        if not claimed:
            logger.info("job is not prepared any more; nothing to do")
            return
        _draft_batch(self, claimed)
        if not job_left_waiting(claimed, uuid.UUID(job_id)):
            return


def _draft_batch(self: RadAssistTask, claimed: list[ClaimedJob]) -> None:
    if len(claimed) > 1:
        logger.info("drafting %d prepared jobs as one batch", len(claimed))
    try:
        loaded = _load(self, claimed)
        prepared = [job for job in loaded if isinstance(job, PreparedJob)]
        results = draft_prepared(prepared, self.settings.model)
        _settle(self, prepared, results, [c for c in loaded if isinstance(c, ClaimedJob)])
    except SoftTimeLimitExceeded:
        timeout = PermanentFailure("drafting exceeded its time limit", code="model.timeout")
        _settle(self, [], [], claimed, error=timeout)


@retry_while_db_down("claiming the job")
def _claim(task: RadAssistTask, job_id: uuid.UUID, takeover: bool = False) -> list[ClaimedJob]:
    with task.session() as session:
        claimed = claim_batch(session, job_id, task.settings, utcnow(), takeover=takeover)
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
        task.app.send_task(name, (job_id,), countdown=delay, **send_priority(task.settings.broker_url, name, priority))
