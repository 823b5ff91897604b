"""The admin's actions on the pipeline, each a compare-and-set plus an audit row in one transaction.

An action never talks to the broker itself: it returns the tasks to send, and the caller sends
them only after the commit (a job is queued only after the database says so).  An action whose
target is not in a state it applies to changes nothing, and is audited as ``refused``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from radassist.broker import DELIVER_TASK, DRAFT_TASK, TASK_QUEUES
from radassist.db.base import utcnow
from radassist.db.tables import AuditEntry, Delivery, Draft, IntakePause, Job, Study
from radassist.db.transitions import set_delivery_state, set_job_state
from radassist.events import EventTag, record_event
from radassist.states import DeliveryState, JobState, StudyState

DRAFT_QUEUE, DELIVER_QUEUE = TASK_QUEUES[DRAFT_TASK], TASK_QUEUES[DELIVER_TASK]
IN_PROGRESS = (JobState.QUEUED, JobState.DRAFTING, JobState.DELIVERING)


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A Celery task to send once the action's transaction has committed."""

    task: str
    args: tuple[str, ...]
    queue: str


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    message: str
    dispatch: tuple[Dispatch, ...] = field(default=())


def audit(session: Session, user: str, action: str, target: str | None, outcome: str, **detail: Any) -> None:
    session.add(AuditEntry(at=utcnow(), user_name=user, action=action, target=target, outcome=outcome, detail=detail))


def _done(session: Session, user: str, action: str, target: str, message: str,
          dispatch: tuple[Dispatch, ...] = (), **detail: Any) -> ActionResult:
    audit(session, user, action, target, "done", **detail)
    return ActionResult(True, message, dispatch)


def _refused(session: Session, user: str, action: str, target: str, message: str) -> ActionResult:
    audit(session, user, action, target, "refused", reason=message)
    return ActionResult(False, message)


def _requeue_delivery(session: Session, delivery: Delivery, now: dt.datetime) -> bool:
    return set_delivery_state(
        session, delivery.id, (DeliveryState.FAILED, DeliveryState.CANCELLED), DeliveryState.PENDING,
        next_attempt_at=now, first_attempt_at=None, last_error_code=None, last_error_message=None,
    )


def _reopen_job_for_delivery(session: Session, job_id: uuid.UUID) -> None:
    """A job failed (or cancelled) only by its deliveries goes back to delivering."""
    set_job_state(session, job_id, (JobState.FAILED, JobState.CANCELLED), JobState.DELIVERING,
                  Job.drafted_at.is_not(None), finished_at=None, error_code=None, error_message=None)


def retry_delivery(session: Session, delivery_id: uuid.UUID, user: str) -> ActionResult:
    """A failed (or cancelled) delivery is due again now; its job returns to delivering."""
    target = str(delivery_id)
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return _refused(session, user, "retry_delivery", target, "no such delivery")
    now = utcnow()
    if not _requeue_delivery(session, delivery, now):
        return _refused(session, user, "retry_delivery", target, f"delivery is {delivery.state.value}, not failed")
    job = session.get(Job, delivery.job_id)
    assert job is not None
    _reopen_job_for_delivery(session, job.id)
    record_event(session, EventTag.DELIVERY_REQUEUED, study_id=job.study_id, job_id=job.id,
                 channel=str(delivery.channel), destination=delivery.destination, by="admin")
    return _done(session, user, "retry_delivery", target, f"{delivery.channel.value} to {delivery.destination} queued again",
                 (Dispatch(DELIVER_TASK, (target,), DELIVER_QUEUE),), job_id=str(job.id))


def retry_job(session: Session, job_id: uuid.UUID, user: str) -> ActionResult:
    """Failed in drafting: queued again.  Failed in delivery (it has a draft): its failed deliveries again."""
    target = str(job_id)
    job = session.get(Job, job_id)
    if job is None:
        return _refused(session, user, "retry_job", target, "no such job")
    if job.state not in (JobState.FAILED, JobState.CANCELLED):
        return _refused(session, user, "retry_job", target, f"job is {job.state.value}, not failed")
    has_draft = session.scalar(select(Draft.id).where(Draft.job_id == job_id)) is not None
    if has_draft:
        now = utcnow()
        failed = session.scalars(
            select(Delivery).where(Delivery.job_id == job_id,
                                   Delivery.state.in_((DeliveryState.FAILED, DeliveryState.CANCELLED)))
        ).all()
        requeued = [d for d in failed if _requeue_delivery(session, d, now)]
        if not requeued:
            return _refused(session, user, "retry_job", target, "the job has a draft and no failed delivery")
        _reopen_job_for_delivery(session, job_id)
        for d in requeued:
            record_event(session, EventTag.DELIVERY_REQUEUED, study_id=job.study_id, job_id=job_id,
                         channel=str(d.channel), destination=d.destination, by="admin")
        return _done(session, user, "retry_job", target, f"{len(requeued)} deliveries queued again",
                     tuple(Dispatch(DELIVER_TASK, (str(d.id),), DELIVER_QUEUE) for d in requeued), mode="deliveries")
    if not set_job_state(session, job_id, (JobState.FAILED, JobState.CANCELLED), JobState.QUEUED,
                         error_code=None, error_message=None, started_at=None, finished_at=None):
        return _refused(session, user, "retry_job", target, "job changed state meanwhile")
    record_event(session, EventTag.JOB_REQUEUED, study_id=job.study_id, job_id=job_id, by="admin")
    return _done(session, user, "retry_job", target, "job queued again",
                 (Dispatch(DRAFT_TASK, (target,), DRAFT_QUEUE),), mode="draft")


def cancel_job(session: Session, job_id: uuid.UUID, user: str) -> ActionResult:
    """Stop a job in progress, and its deliveries not yet delivered."""
    target = str(job_id)
    job = session.get(Job, job_id)
    if job is None:
        return _refused(session, user, "cancel_job", target, "no such job")
    if not set_job_state(session, job_id, IN_PROGRESS, JobState.CANCELLED, finished_at=utcnow()):
        return _refused(session, user, "cancel_job", target, f"job is {job.state.value}, not in progress")
    result = session.execute(
        update(Delivery)
        .where(Delivery.job_id == job_id, Delivery.state.in_((DeliveryState.PENDING, DeliveryState.SENDING)))
        .values(state=DeliveryState.CANCELLED)
    )
    assert isinstance(result, CursorResult)
    record_event(session, EventTag.JOB_CANCELLED, study_id=job.study_id, job_id=job_id, by="admin",
                 deliveries_cancelled=result.rowcount)
    return _done(session, user, "cancel_job", target, f"job cancelled ({result.rowcount} deliveries)")


def _job_in_progress(session: Session, study_id: uuid.UUID) -> bool:
    return session.scalar(select(Job.id).where(Job.study_id == study_id, Job.state.in_(IN_PROGRESS)).limit(1)) is not None


def _new_job(session: Session, study: Study, model_name: str, now: dt.datetime) -> Job:
    previous = session.scalar(
        select(Job.id).where(Job.study_id == study.id).order_by(Job.created_at.desc(), Job.id.desc()).limit(1)
    )
    job = Job(id=uuid.uuid4(), study_id=study.id, state=JobState.QUEUED, model_name=model_name,
              created_at=now, supersedes_job_id=previous)
    session.add(job)
    session.flush()
    record_event(session, EventTag.JOB_QUEUED, study_id=study.id, job_id=job.id, model_name=model_name, by="admin")
    return job


def force_complete(session: Session, study_id: uuid.UUID, user: str, model_name: str) -> ActionResult:
    """A study still receiving is declared complete now and gets its job (what the sweep would do later)."""
    target = str(study_id)
    now = utcnow()
    if _job_in_progress(session, study_id):
        return _refused(session, user, "force_complete", target, "a job is already in progress")
    claimed = session.execute(
        update(Study)
        .where(Study.id == study_id, Study.state == StudyState.RECEIVING)
        .values(state=StudyState.COMPLETE, completed_at=now)
        .returning(Study.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if claimed is None:
        return _refused(session, user, "force_complete", target, "study is not receiving")
    study = session.get(Study, study_id, populate_existing=True)
    assert study is not None
    record_event(session, EventTag.STUDY_COMPLETE, study_id=study_id, forced_by="admin")
    job = _new_job(session, study, model_name, now)
    return _done(session, user, "force_complete", target, "study complete; job queued",
                 (Dispatch(DRAFT_TASK, (str(job.id),), DRAFT_QUEUE),), job_id=str(job.id))


def redraft(session: Session, study_id: uuid.UUID, user: str, model_name: str) -> ActionResult:
    """A new job for a study whose jobs are all finished (its SR will supersede the previous one)."""
    target = str(study_id)
    study = session.get(Study, study_id)
    if study is None:
        return _refused(session, user, "redraft", target, "no such study")
    if _job_in_progress(session, study_id):
        return _refused(session, user, "redraft", target, "a job is already in progress")
    job = _new_job(session, study, model_name, utcnow())
    return _done(session, user, "redraft", target, "new job queued",
                 (Dispatch(DRAFT_TASK, (str(job.id),), DRAFT_QUEUE),), job_id=str(job.id))


def pause_intake(session: Session, ae_title: str, user: str) -> ActionResult:
    title = ae_title.strip()
    if not title or len(title) > 16:
        return _refused(session, user, "pause_intake", title[:64], "not an AE title")
    if session.get(IntakePause, title) is not None:
        return _refused(session, user, "pause_intake", title, "already paused")
    session.add(IntakePause(ae_title=title, paused_at=utcnow(), paused_by=user))
    return _done(session, user, "pause_intake", title, f"intake from {title} paused")


def resume_intake(session: Session, ae_title: str, user: str) -> ActionResult:
    title = ae_title.strip()
    result = session.execute(delete(IntakePause).where(IntakePause.ae_title == title))
    assert isinstance(result, CursorResult)
    if result.rowcount == 0:
        return _refused(session, user, "resume_intake", title[:64], "not paused")
    return _done(session, user, "resume_intake", title, f"intake from {title} resumed")


def intake_paused(session: Session, ae_title: str) -> bool:
    """True when an admin paused intake from this calling AE title (the listener then refuses it)."""
    return session.get(IntakePause, ae_title.strip()) is not None


def paused_ae_titles(session: Session) -> list[IntakePause]:
    return list(session.scalars(select(IntakePause).order_by(IntakePause.ae_title)))


def audit_log(session: Session, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                                .limit(limit).offset(offset)))
