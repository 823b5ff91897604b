"""The admin's actions on studies: declare one complete now, or draft it again.

Both make the job the sweep would make (:mod:`radassist.completion`), with the model of the
study's pipeline, which the caller resolves once and passes in.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from radassist.actions.outcome import IN_PROGRESS, ActionResult, Dispatch, done, refused
from radassist.broker import PREPARE_TASK, PRIORS_TASK
from radassist.db.base import utcnow
from radassist.db.tables import Job, Study
from radassist.events import EventTag, record_event
from radassist.intake.identity import resolve_identity_conflict
from radassist.ris.priority import job_priority
from radassist.states import JobState, StudyState


def _job_in_progress(session: Session, study_id: uuid.UUID) -> bool:
    in_progress = select(Job.id).where(Job.study_id == study_id, Job.state.in_(IN_PROGRESS), Job.shadow.is_(False))
    return session.scalar(in_progress.limit(1)) is not None


def _new_job(session: Session, study: Study, model_name: str, now: dt.datetime, priors: bool) -> Job:
    previous = session.scalar(
        select(Job.id).where(Job.study_id == study.id, Job.shadow.is_(False))
        .order_by(Job.created_at.desc(), Job.id.desc()).limit(1)
    )
    job = Job(id=uuid.uuid4(), study_id=study.id, state=JobState.PRIORS if priors else JobState.QUEUED,
              model_name=model_name, created_at=now, supersedes_job_id=previous,
              priority=job_priority(session, study.id, pipeline_stat=False))
    session.add(job)
    session.flush()
    record_event(session, EventTag.JOB_QUEUED, study_id=study.id, job_id=job.id, model_name=model_name, by="admin")
    return job


def force_complete(session: Session, study_id: uuid.UUID, user: str, model_name: str, *,
                   priors: bool = False) -> ActionResult:
    """A study still receiving is declared complete now and gets its job (what the sweep would do later);
    with ``priors``, the job fetches the patient's priors first."""
    target = str(study_id)
    now = utcnow()
    if _job_in_progress(session, study_id):
        return refused(session, user, "force_complete", target, "a job is already in progress")
    claimed = session.execute(
        update(Study)
        .where(Study.id == study_id, Study.state == StudyState.RECEIVING)
        .values(state=StudyState.COMPLETE, completed_at=now)
        .returning(Study.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if claimed is None:
        return refused(session, user, "force_complete", target, "study is not receiving")
    study = session.get(Study, study_id, populate_existing=True)
    assert study is not None
    record_event(session, EventTag.STUDY_COMPLETE, study_id=study_id, forced_by="admin")
    job = _new_job(session, study, model_name, now, priors)
    return done(session, user, "force_complete", target, "study complete; job queued",
                (Dispatch.of(PRIORS_TASK if priors else PREPARE_TASK, str(job.id)),), job_id=str(job.id))


def redraft(session: Session, study_id: uuid.UUID, user: str, model_name: str, *, priors: bool = False) -> ActionResult:
    """A new job for a study whose jobs are all finished (its SR will supersede the previous one);
    with ``priors``, the job fetches the patient's priors first."""
    target = str(study_id)
    study = session.get(Study, study_id)
    if study is None:
        return refused(session, user, "redraft", target, "no such study")
    if study.state is StudyState.IDENTITY_CONFLICT:
        return refused(session, user, "redraft", target, "the study's instances name different patients; resolve that first")
    if _job_in_progress(session, study_id):
        return refused(session, user, "redraft", target, "a job is already in progress")
    job = _new_job(session, study, model_name, utcnow(), priors)
    return done(session, user, "redraft", target, "new job queued",
                (Dispatch.of(PRIORS_TASK if priors else PREPARE_TASK, str(job.id)),), job_id=str(job.id))


def resolve_identity(session: Session, study_id: uuid.UUID, user: str, keep_instance_id: uuid.UUID,
                     resolution: str) -> ActionResult:
    """An admin decides which patient a study held for an identity conflict is of (audited by intake)."""
    try:
        outcome = resolve_identity_conflict(session, study_id, user, keep_instance_id=keep_instance_id,
                                            resolution=resolution)
    except ValueError:
        return refused(session, user, "resolve_identity", str(study_id), f"unknown resolution {resolution[:32]!r}")
    return ActionResult(outcome.ok, outcome.message, removed_files=outcome.removed_paths)

