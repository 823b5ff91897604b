"""Drafting (``gpu`` queue): prepare the study's images, run the model, build the outputs.

The only module that reaches the model package.  The model is loaded once per worker process
(``radassist.models.loader`` caches it), on the first job rather than at start, so a worker
without weights still starts and fails each job with the reason.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select

from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Draft, Instance, Job
from radassist.db.transitions import set_job_state
from radassist.delivery.outbox import create_outputs, read_headers
from radassist.errors import PermanentFailure, RadAssistError
from radassist.events import EventTag, record_event
from radassist.logging import log_context
from radassist.metrics import JOBS_FINISHED, observe_stage
from radassist.states import JobState
from workers.base import RadAssistTask
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name="radassist.draft_study", ignore_result=True)
def draft_study(self: RadAssistTask, job_id: str) -> None:
    job_uuid = uuid.UUID(job_id)
    settings = self.settings
    with self.session() as session:
        started = utcnow()
        if not set_job_state(
            session, job_uuid, JobState.QUEUED, JobState.DRAFTING, started_at=started, attempts=Job.attempts + 1
        ):
            logger.info("job is not queued any more; nothing to do")
            return
        job = session.get(Job, job_uuid)
        assert job is not None
        record_event(session, EventTag.DRAFT_STARTED, study_id=job.study_id, job_id=job.id)
        session.commit()
        study_id = job.study_id
        relpaths = session.scalars(
            select(Instance.path).where(Instance.study_id == study_id).order_by(Instance.received_at)
        ).all()

    with log_context(job_id=job_uuid, study_id=study_id):
        try:
            paths = [settings.storage.instances_dir / p for p in relpaths]
            draft, sources = _draft(paths, settings)
        except SoftTimeLimitExceeded:
            _fail(self, job_uuid, study_id, PermanentFailure("drafting exceeded its time limit", code="model.timeout"))
            return
        except RadAssistError as exc:
            _fail(self, job_uuid, study_id, exc)
            return
        except Exception as exc:  # a bug or a library failure: fail visibly, never silently
            logger.exception("drafting failed unexpectedly")
            _fail(self, job_uuid, study_id, PermanentFailure(f"drafting failed: {type(exc).__name__}", code="draft.error"))
            return
        _store_draft(self, job_uuid, study_id, draft, sources)


def _draft(paths: list[Path], settings):  # type: ignore[no-untyped-def]
    from radassist.imaging.prepare import prepare_study
    from radassist.models.loader import get_draft_model

    prepared = prepare_study(paths, image_size=settings.model.image_size, max_images=settings.model.max_images)
    model = get_draft_model(settings.model)
    result = model.draft(prepared)
    sources = read_headers(paths)
    generation = dict(result.generation)
    generation["indication"] = prepared.context.indication
    generation["notes"] = list(prepared.notes)
    generation["source_sop_instance_uids"] = list(prepared.source_sop_instance_uids)
    draft = Draft(
        findings=result.findings,
        impression=result.impression,
        raw_text=result.raw_text,
        model_name=result.model_name,
        model_revision=result.model_revision,
        prompt=result.prompt,
        prompt_version=result.prompt_version,
        generation=generation,
    )
    return draft, sources


def _store_draft(task: RadAssistTask, job_id: uuid.UUID, study_id: uuid.UUID, draft: Draft, sources) -> None:  # type: ignore[no-untyped-def]
    from workers.tasks.deliver import deliver

    settings = task.settings
    with task.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.state is not JobState.DRAFTING:
            logger.info("job left drafting while the model ran (cancelled?); draft discarded")
            return
        now = utcnow()
        draft.job_id = job_id
        session.add(draft)
        try:
            deliveries = create_outputs(session, job, draft, sources, settings, task.outputs, now)
        except RadAssistError as exc:
            session.rollback()
            _fail(task, job_id, study_id, exc)
            return
        except Exception as exc:
            session.rollback()
            logger.exception("building the outputs failed")
            _fail(task, job_id, study_id, PermanentFailure(f"building the SR/ORU failed: {type(exc).__name__}", code="output.build"))
            return
        target = JobState.DELIVERING if deliveries else JobState.DONE
        set_job_state(
            session, job_id, JobState.DRAFTING, target, drafted_at=now,
            finished_at=now if target is JobState.DONE else None,
        )
        record_event(session, EventTag.DRAFT_COMPLETED, study_id=study_id, job_id=job_id,
                     seconds=draft.generation.get("seconds"))
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


def _fail(task: RadAssistTask, job_id: uuid.UUID, study_id: uuid.UUID, error: RadAssistError) -> None:
    with task.session() as session:
        if set_job_state(
            session, job_id, JobState.DRAFTING, JobState.FAILED,
            error_code=error.code, error_message=error.message[:2000], finished_at=utcnow(),
        ):
            record_event(session, EventTag.JOB_FAILED, study_id=study_id, job_id=job_id, code=error.code)
            JOBS_FINISHED.labels(state=str(JobState.FAILED)).inc()
        session.commit()
    logger.warning("job failed: %s", error.code)
