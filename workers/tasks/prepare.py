"""Preparing (``cpu`` queue): wires the prepare task to :mod:`radassist.drafting.preparing`.

Claim a queued job, read its order and comparison, prepare its pictures and prompt inputs from
the stored files, keep them in the prepared store, move the job to ``prepared`` and only then send
the draft task (by name, through the routes of :mod:`radassist.broker`, so with its priority).
While the GPU drafts one batch, cpu workers prepare the next.  This module loads no model: the
draft task is sent by name.
"""

from __future__ import annotations

import functools
import logging
import uuid

from celery import shared_task

from radassist.broker import DRAFT_TASK, PREPARE_TASK, send_job_task
from radassist.db.base import utcnow
from radassist.drafting.claim import ClaimedJob, record_holder
from radassist.drafting.prepare import PreparedJob, kept_inputs, prepare_job, read_comparison, read_order
from radassist.drafting.preparing import (
    claim_for_preparing,
    fail_preparing,
    hand_back,
    hand_to_model,
    stat_queued,
)
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.logging import log_context
from radassist.store.prepared import prepared_store
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)

STORE_RETRIES = 3
"""Times a job whose inputs could not be kept (store unreachable) is prepared again before it fails."""
STORE_RETRY_DELAY_S = 10.0


@shared_task(base=RadAssistTask, bind=True, name=PREPARE_TASK, ignore_result=True)
def prepare_for_model(self: RadAssistTask, job_id: str) -> None:
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    own = uuid.UUID(job_id)
    with self.session() as session:
        stat_first = stat_queued(session, own)  # STAT jobs waiting go first, whatever message woke us
    for other in stat_first:
        _prepare(self, other, False)
    _prepare(self, own, redelivered)


def _prepare(self: RadAssistTask, job_id: uuid.UUID, redelivered: bool) -> None:
    claimed = _claim(self, job_id, redelivered)
    if claimed is None:
        logger.info("job is not queued for preparing any more; nothing to do")
        return
    with log_context(job_id=claimed.job_id, study=claimed.study_handle):
        with self.session() as session:
            order = read_order(session, claimed.accession_hash)
            comparison = read_comparison(session, claimed.job_id, self.settings.storage.instances_dir)
        prepared = prepare_job(claimed, self.settings.model, order, comparison)
        if isinstance(prepared, RadAssistError):
            _fail(self, claimed, prepared)
            return
        if _keep(self, prepared):
            _hand_on(self, claimed, len(prepared.study.images))


@retry_while_db_down("claiming the job for preparing")
def _claim(task: RadAssistTask, job_id: uuid.UUID, takeover: bool) -> ClaimedJob | None:
    with task.session() as session:
        claimed = claim_for_preparing(session, job_id, task.settings, utcnow(), takeover=takeover)
        if claimed is not None:
            record_holder(session, [claimed.job_id], task.request.hostname)
        session.commit()
    return claimed


def _keep(task: RadAssistTask, prepared: PreparedJob) -> bool:
    """Keep the job's inputs; when the store fails, the job is queued again (a few times) or failed."""
    try:
        prepared_store(task.settings).save_inputs(prepared.claimed.job_id, kept_inputs(prepared))
        return True
    except (OSError, ValueError) as exc:
        reason = f"the prepared inputs could not be kept ({type(exc).__name__})"
        retries = int(task.request.retries or 0)
        if retries >= STORE_RETRIES:
            _fail(task, prepared.claimed, PermanentFailure(reason, code="prepare.store_failed"))
            return False
        _hand_back(task, prepared.claimed, TransientFailure(reason, code="prepare.store_failed"))
        raise task.retry(countdown=STORE_RETRY_DELAY_S * (retries + 1), max_retries=STORE_RETRIES) from None


@retry_while_db_down("handing the prepared job to the model")
def _hand_on(task: RadAssistTask, claimed: ClaimedJob, pictures: int) -> None:
    with task.session() as session:
        if hand_to_model(session, claimed, pictures):
            after_commit(session, functools.partial(send_job_task, task.app, task.settings.broker_url, DRAFT_TASK,
                                                    claimed.job_id, claimed.priority))
        session.commit()


@retry_while_db_down("queueing the job again")
def _hand_back(task: RadAssistTask, claimed: ClaimedJob, error: TransientFailure) -> None:
    with task.session() as session:
        hand_back(session, claimed, error)
        session.commit()


@retry_while_db_down("failing the job")
def _fail(task: RadAssistTask, claimed: ClaimedJob, error: RadAssistError) -> None:
    with task.session() as session:
        fail_preparing(session, claimed, error, utcnow())
        session.commit()
