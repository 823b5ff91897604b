"""A radiologist's (or admin's) decision on a draft the safety gate held: release it or discard it.

Released, the job goes ``needs_review -> drafted`` and its outputs are built and sent as usual,
still an unverified AI draft (the warnings stated in them); discarded, it ends ``discarded`` with
the reason, and nothing is ever sent.  Each is a compare-and-set, an event and an audit row; the
reason (free text of the reviewer) goes to the audit row and, for a discard, the job's reason,
never to a log.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from radassist.actions.outcome import ActionResult, Dispatch, done, refused
from radassist.broker import BUILD_TASK
from radassist.db.base import utcnow
from radassist.db.tables import Job
from radassist.db.transitions import set_job_state
from radassist.events import EventTag, record_event
from radassist.states import JobState

REASON_MAX_CHARS = 500
DISCARDED_CODE = "review.discarded"


def clean_reason(text: str | None) -> str:
    """The reviewer's reason on one line, control characters removed, at most ``REASON_MAX_CHARS``."""
    printable = "".join(ch if ch.isprintable() else " " for ch in (text or ""))
    return " ".join(printable.split())[:REASON_MAX_CHARS]


def _held_job(session: Session, job_id: uuid.UUID, user: str, action: str, reason: str) -> Job | ActionResult:
    """The job to decide on, or the refusal (no such job, no reason given)."""
    job = session.get(Job, job_id)
    if job is None:
        return refused(session, user, action, str(job_id), "no such job")
    if not reason:
        return refused(session, user, action, str(job_id), "a reason is required")
    return job


def release_draft(session: Session, job_id: uuid.UUID, user: str, reason: str | None) -> ActionResult:
    """A held draft goes out: its outputs are built and sent (still an unverified AI draft)."""
    text = clean_reason(reason)
    job = _held_job(session, job_id, user, "release_draft", text)
    if isinstance(job, ActionResult):
        return job
    target = str(job_id)
    if not set_job_state(session, job_id, JobState.NEEDS_REVIEW, JobState.DRAFTED):
        return refused(session, user, "release_draft", target, f"job is {job.state.value}, not held for review")
    record_event(session, EventTag.DRAFT_RELEASED, study_id=job.study_id, job_id=job_id, by=user)
    return done(session, user, "release_draft", target, "draft released: its SR and ORU are built and sent",
                (Dispatch.of(BUILD_TASK, target),), reason=text)


def discard_draft(session: Session, job_id: uuid.UUID, user: str, reason: str | None) -> ActionResult:
    """A held draft is never sent; the job ends ``discarded`` with the reason."""
    text = clean_reason(reason)
    job = _held_job(session, job_id, user, "discard_draft", text)
    if isinstance(job, ActionResult):
        return job
    target = str(job_id)
    if not set_job_state(session, job_id, JobState.NEEDS_REVIEW, JobState.DISCARDED, finished_at=utcnow(),
                         error_code=DISCARDED_CODE, error_message=f"discarded by {user} in review: {text}"[:2000]):
        return refused(session, user, "discard_draft", target, f"job is {job.state.value}, not held for review")
    record_event(session, EventTag.DRAFT_DISCARDED, study_id=job.study_id, job_id=job_id, by=user)
    return done(session, user, "discard_draft", target, "draft discarded: nothing is sent", reason=text)
