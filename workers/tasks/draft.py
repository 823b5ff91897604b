"""Drafting (``gpu`` queue): prepare the study's images, run the model, build the outputs.

The only module that reaches the model package.  The model is loaded once per worker process
(``radassist.models.loader`` caches it), on the first job rather than at start, so a worker
without weights still starts and fails each job with the reason.

Batching: a worker that picks up a job also claims up to ``[model] batch_size - 1`` other queued
jobs of the same model (compare-and-set each, oldest first) and drafts them all in one
``generate``.  The claimed jobs' own messages then find them no longer queued and exit quietly.
A job whose output fails the checks (empty, truncated, repetitive, not text) fails with that
reason and gets no SR or ORU; a transient failure (GPU out of memory, model server busy) puts the
job back in the queue, up to ``MAX_TRANSIENT_ATTEMPTS`` attempts.

A worker killed mid-draft (SIGKILL, out of memory) leaves its jobs in ``drafting``.  With
``acks_late`` and ``task_reject_on_worker_lost`` the broker hands its message to another worker,
marked *redelivered*; that worker takes the job over (and the batch it was drafted with: same
``started_at``) instead of exiting because the job is not ``queued``.  Each claim increments
``attempts``, and every write at the end of a draft requires the ``attempts`` it claimed with, so
a worker that was presumed dead but was only slow finds its claim superseded and writes nothing:
no second SR or ORU.  A job whose message is lost with its worker (a whole worker killed on
Redis) is handed back by the sweep after the hard time limit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.tables import Draft, Instance, Job, Study
from radassist.db.transitions import set_job_state
from radassist.delivery.outbox import create_outputs, read_headers
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.events import EventTag, record_event
from radassist.logging import log_context
from radassist.metrics import JOBS_FINISHED, observe_stage
from radassist.states import JobState
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)

MAX_TRANSIENT_ATTEMPTS = 3
TRANSIENT_RETRY_DELAY_S = 30.0


@dataclass
class _Claimed:
    """One job taken for this run, and what was worked out for it so far."""

    job_id: uuid.UUID
    study_id: uuid.UUID
    attempts: int
    paths: list[Path]
    accession_hash: str | None
    prepared: Any = None
    profile: Any = None
    order: Any = None
    sources: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@shared_task(base=RadAssistTask, bind=True, name="radassist.draft_study", ignore_result=True)
def draft_study(self: RadAssistTask, job_id: str) -> None:
    settings = self.settings
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    claimed = _claim(self, uuid.UUID(job_id), settings, takeover=redelivered)
    if not claimed:
        logger.info("job is not queued any more; nothing to do")
        return
    if len(claimed) > 1:
        logger.info("drafting %d queued jobs as one batch", len(claimed))
    try:
        ready = [c for c in claimed if _prepare(self, c, settings)]
        if ready:
            _draft_batch(self, ready, settings)
    except SoftTimeLimitExceeded:
        for c in claimed:
            _fail(self, c.job_id, c.study_id, PermanentFailure("drafting exceeded its time limit", code="model.timeout"),
                  c.attempts)


@retry_while_db_down("claiming the job")
def _claim(task: RadAssistTask, job_id: uuid.UUID, settings: Settings, takeover: bool = False) -> list[_Claimed]:
    """CAS this job to drafting, then up to batch_size - 1 other queued jobs of the same model.

    ``takeover``: the message was redelivered because the worker that held it died; a job still in
    ``drafting`` is then taken over, with the jobs that worker had claimed in the same batch.
    """
    claimed: list[_Claimed] = []
    with task.session() as session:
        now = utcnow()
        ids: list[uuid.UUID] = []
        if set_job_state(
            session, job_id, JobState.QUEUED, JobState.DRAFTING, started_at=now, attempts=Job.attempts + 1
        ):
            ids = [job_id]
        elif takeover:
            ids = _take_over(session, job_id, now)
        if not ids:
            return []
        job = session.get(Job, job_id)
        assert job is not None
        extra = settings.model.batch_size - len(ids)
        if extra > 0:
            candidates = session.scalars(
                select(Job.id)
                .where(Job.state == JobState.QUEUED, Job.model_name == job.model_name, Job.id != job_id)
                .order_by(Job.created_at)
                .limit(extra)
            ).all()
            for other in candidates:
                if set_job_state(
                    session, other, JobState.QUEUED, JobState.DRAFTING, started_at=now, attempts=Job.attempts + 1
                ):
                    ids.append(other)
        for claimed_id in ids:
            row = session.get(Job, claimed_id)
            assert row is not None
            session.refresh(row)
            record_event(session, EventTag.DRAFT_STARTED, study_id=row.study_id, job_id=row.id, batch=len(ids))
            study = session.get(Study, row.study_id)
            relpaths = session.scalars(
                select(Instance.path).where(Instance.study_id == row.study_id).order_by(Instance.received_at)
            ).all()
            claimed.append(
                _Claimed(
                    job_id=row.id,
                    study_id=row.study_id,
                    attempts=row.attempts,
                    paths=[settings.storage.instances_dir / p for p in relpaths],
                    accession_hash=study.accession_number_hash if study is not None else None,
                )
            )
        session.commit()
    return claimed


def _take_over(session: Any, job_id: uuid.UUID, now: Any) -> list[uuid.UUID]:
    """Claim a dead worker's batch: the job, and the jobs it was claimed with (same ``started_at``).

    Each goes drafting -> queued -> drafting in this transaction (both allowed transitions), with
    ``attempts`` incremented: that is the fence against the previous holder.
    """
    row = session.execute(
        select(Job.state, Job.started_at, Job.model_name, Job.study_id).where(Job.id == job_id)
    ).one_or_none()
    if row is None or row.state is not JobState.DRAFTING or row.started_at is None:
        return []
    batch = session.execute(
        select(Job.id, Job.study_id).where(Job.state == JobState.DRAFTING, Job.started_at == row.started_at,
                                           Job.model_name == row.model_name, Job.id != job_id)
    ).all()
    taken = []
    for other, study_id in [(job_id, row.study_id), *batch]:
        if set_job_state(session, other, JobState.DRAFTING, JobState.QUEUED) and set_job_state(
            session, other, JobState.QUEUED, JobState.DRAFTING, started_at=now, attempts=Job.attempts + 1
        ):
            record_event(session, EventTag.JOB_REQUEUED, study_id=study_id, job_id=other,
                         reason="worker lost; taken over")
            taken.append(other)
    if taken:
        logger.warning("took over %d job(s) from a worker that died mid-draft", len(taken))
    return taken


def _order_facts(task: RadAssistTask, accession_hash: str | None) -> Any:
    """The RIS order's facts for the prompt, when the HL7 order module is there and knows the study."""
    if not accession_hash:
        return None
    try:
        from radassist.ris.context import order_context
    except ImportError:
        return None
    from radassist.models.prompts import OrderFacts

    with task.session() as session:
        try:
            context = order_context(session, accession_hash)
        except Exception as exc:  # noqa: BLE001 -- the order is optional context; never fail the draft for it
            logger.warning("order context unavailable (%s)", type(exc).__name__)
            return None
    if context is None:
        return None
    return OrderFacts(
        indication=getattr(context, "indication", None),
        requested_procedure=getattr(context, "requested_procedure", None) or getattr(context, "procedure_text", None),
        priority=getattr(context, "priority", None),
        prior_report=getattr(context, "prior_report", None),
    )


def _prepare(task: RadAssistTask, claimed: _Claimed, settings: Settings) -> bool:
    """Images, profile and order for one job; False (job failed) when there is nothing to draft."""
    from radassist.imaging.prepare import prepare_study
    from radassist.models.profiles import ProfileChooser

    chooser = ProfileChooser(settings.model)
    with log_context(job_id=claimed.job_id, study_id=claimed.study_id):
        try:
            claimed.prepared = prepare_study(
                claimed.paths, image_size=settings.model.image_size, max_images=settings.model.max_images,
                resolve=chooser,
            )
            claimed.profile = chooser.profile
            claimed.order = _order_facts(task, claimed.accession_hash)
            claimed.sources = read_headers(claimed.paths)
        except RadAssistError as exc:
            _fail(task, claimed.job_id, claimed.study_id, exc, claimed.attempts)
            return False
        except Exception as exc:  # a bug or a library failure: fail visibly, never silently
            logger.exception("preparing the study failed unexpectedly")
            _fail(task, claimed.job_id, claimed.study_id,
                  PermanentFailure(f"preparing the study failed: {type(exc).__name__}", code="draft.error"),
                  claimed.attempts)
            return False
    return True


def _draft_batch(task: RadAssistTask, batch: list[_Claimed], settings: Settings) -> None:
    from radassist.models.drafting import DraftInput, draft_many
    from radassist.models.loader import get_draft_model

    try:
        model = get_draft_model(settings.model)
        results: list[Any] = draft_many(
            model,
            [DraftInput(c.prepared, c.profile, c.order) for c in batch],
        )
    except RadAssistError as exc:
        results = [exc for _ in batch]
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # a bug or a library failure: fail visibly, never silently
        logger.exception("drafting failed unexpectedly")
        results = [PermanentFailure(f"drafting failed: {type(exc).__name__}", code="draft.error") for _ in batch]
    for claimed, result in zip(batch, results, strict=True):
        with log_context(job_id=claimed.job_id, study_id=claimed.study_id):
            if isinstance(result, TransientFailure) and claimed.attempts < MAX_TRANSIENT_ATTEMPTS:
                _requeue(task, claimed, result)
            elif isinstance(result, RadAssistError):
                _fail(task, claimed.job_id, claimed.study_id, result, claimed.attempts)
            else:
                _store_draft(task, claimed, _draft_row(claimed, result))


def _draft_row(claimed: _Claimed, result: Any) -> Draft:
    prepared = claimed.prepared
    generation = dict(result.generation)
    generation["indication"] = prepared.context.indication
    generation["notes"] = list(prepared.notes)
    generation["source_sop_instance_uids"] = list(prepared.source_sop_instance_uids)
    generation["order_context_used"] = claimed.order is not None
    return Draft(
        findings=result.findings,
        impression=result.impression,
        raw_text=result.raw_text,
        model_name=result.model_name,
        model_revision=result.model_revision,
        prompt=result.prompt,
        prompt_version=result.prompt_version,
        generation=generation,
    )


@retry_while_db_down("requeueing the job")
def _requeue(task: RadAssistTask, claimed: _Claimed, error: TransientFailure) -> None:
    """Back to the queue after a delay: the GPU or the model server may be free by then."""
    with task.session() as session:
        if not set_job_state(session, claimed.job_id, JobState.DRAFTING, JobState.QUEUED,
                             Job.attempts == claimed.attempts,
                             error_code=error.code, error_message=error.message[:2000]):
            return
        record_event(session, EventTag.JOB_REQUEUED, study_id=claimed.study_id, job_id=claimed.job_id,
                     code=error.code, attempts=claimed.attempts)
        job_id = str(claimed.job_id)
        delay = TRANSIENT_RETRY_DELAY_S * claimed.attempts
        after_commit(session, lambda: draft_study.apply_async((job_id,), countdown=delay))
        session.commit()
    logger.warning("drafting hit a transient failure (%s); job requeued", error.code)


@retry_while_db_down("storing the draft")
def _store_draft(task: RadAssistTask, claimed: _Claimed, draft: Draft) -> None:
    from workers.tasks.deliver import deliver

    settings = task.settings
    job_id, study_id, sources = claimed.job_id, claimed.study_id, claimed.sources
    with task.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.state is not JobState.DRAFTING or job.attempts != claimed.attempts:
            logger.info("job left drafting or was taken over while the model ran; draft discarded")
            return
        now = utcnow()
        draft.job_id = job_id
        session.add(draft)
        try:
            deliveries = create_outputs(session, job, draft, sources, settings, task.outputs, now)
        except RadAssistError as exc:
            session.rollback()
            _fail(task, job_id, study_id, exc, claimed.attempts)
            return
        except (OperationalError, InterfaceError):
            raise  # the database went away: wait it out (retry_while_db_down), never fail the job for it
        except Exception as exc:
            session.rollback()
            logger.exception("building the outputs failed")
            _fail(task, job_id, study_id, PermanentFailure(f"building the SR/ORU failed: {type(exc).__name__}", code="output.build"),
                  claimed.attempts)
            return
        target = JobState.DELIVERING if deliveries else JobState.DONE
        # Fenced by attempts: a worker that took the job over since our check wins, and our
        # outputs are rolled back (no second SR or ORU for one job).
        if not set_job_state(
            session, job_id, JobState.DRAFTING, target, Job.attempts == claimed.attempts, drafted_at=now,
            finished_at=now if target is JobState.DONE else None,
        ):
            session.rollback()
            logger.info("job was taken over while the model ran; draft discarded")
            return
        record_event(session, EventTag.DRAFT_COMPLETED, study_id=study_id, job_id=job_id,
                     seconds=draft.generation.get("seconds"), batch=draft.generation.get("batch_size"),
                     warnings=len(draft.generation.get("consistency_warnings") or ()))
        if job.started_at is not None:
            observe_stage("queued", (job.started_at - job.created_at).total_seconds())
            observe_stage("drafting", (now - job.started_at).total_seconds())
        if target is JobState.DONE:
            record_event(session, EventTag.JOB_DONE, study_id=study_id, job_id=job_id, deliveries=0)
            JOBS_FINISHED.labels(state=str(JobState.DONE)).inc()
        session.flush()
        ids = [d.id for d in deliveries]
        after_commit(session, lambda: [deliver.apply_async((str(i),)) for i in ids])
        session.commit()
    logger.info("draft stored; %d deliveries queued", len(ids))


@retry_while_db_down("failing the job")
def _fail(task: RadAssistTask, job_id: uuid.UUID, study_id: uuid.UUID, error: RadAssistError,
          attempts: int | None = None) -> None:
    """Fail a drafting job; with ``attempts``, only if no other worker has claimed it since."""
    fence = () if attempts is None else (Job.attempts == attempts,)
    with task.session() as session:
        if set_job_state(
            session, job_id, JobState.DRAFTING, JobState.FAILED, *fence,
            error_code=error.code, error_message=error.message[:2000], finished_at=utcnow(),
        ):
            record_event(session, EventTag.JOB_FAILED, study_id=study_id, job_id=job_id, code=error.code)
            JOBS_FINISHED.labels(state=str(JobState.FAILED)).inc()
        session.commit()
    logger.warning("job failed: %s", error.code)


