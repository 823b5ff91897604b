"""What a drafting run writes, each only while its claim holds (``jobs.attempts`` unchanged).

The outcome of one job: its draft is stored, and the safety gate (:mod:`radassist.safety.gate`)
decides where it goes: ``needs_review`` when a warning's policy is ``hold`` (nothing is built or
sent until a radiologist releases or discards it), else ``drafted`` (the outputs are built next, on
the io queue); the decision is stored with the draft.  Or, after a transient failure (GPU out of
memory, model server busy), the job goes back to ``prepared`` (its inputs are still kept), up to
``MAX_TRANSIENT_ATTEMPTS`` claims; or back to ``queued`` when its kept inputs are gone, to be
prepared again; or it fails with the reason (output with nothing to review gets no SR or ORU).  Each
function works in the caller's session; the caller commits, and queues follow-up tasks only after
the commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy.orm import Session

from radassist.config.safety import SafetySettings
from radassist.db.tables import Draft, Job
from radassist.db.transitions import set_job_state
from radassist.drafting.claim import ClaimedJob
from radassist.errors import RadAssistError, TransientFailure
from radassist.events import EventTag, record_event
from radassist.metrics import JOBS_FINISHED, observe_stage
from radassist.safety.checks import stored_warnings
from radassist.safety.gate import GateDecision, checks_column, decide
from radassist.states import JobState

logger = logging.getLogger(__name__)

MAX_TRANSIENT_ATTEMPTS = 3
TRANSIENT_RETRY_DELAY_S = 30.0
"""The wait before a requeued job is drafted again, times the attempts so far."""


def should_requeue(claimed: ClaimedJob, error: RadAssistError) -> bool:
    """A transient failure with claims to spare goes back to the queue; anything else fails the job."""
    return isinstance(error, TransientFailure) and claimed.attempts < MAX_TRANSIENT_ATTEMPTS


def gate(draft: Draft, safety: SafetySettings) -> GateDecision:
    """Apply ``[safety]`` to the draft's warnings and store the decision with it."""
    decision = decide(stored_warnings((draft.generation or {}).get("safety_warnings") or ()), safety)
    draft.warnings = decision.stored()
    draft.warning_checks = checks_column(decision.checks)
    return decision


def store_draft(session: Session, claimed: ClaimedJob, draft: Draft, now: dt.datetime,
                safety: SafetySettings) -> JobState | None:
    """Add the draft and move the job drafting -> drafted, or -> needs_review when the gate holds it;
    the state reached, or None (nothing written) when the claim is gone.

    A shadow job goes on to done in the same transaction: its draft is only measured.

    Fenced by ``attempts``: a worker that took the job over meanwhile wins, and this draft is dropped.
    """
    decision = gate(draft, safety)
    # A shadow model's draft is only measured: nothing of it is sent, so nothing is held.
    target = JobState.NEEDS_REVIEW if decision.hold and not claimed.shadow else JobState.DRAFTED
    if not set_job_state(session, claimed.job_id, JobState.DRAFTING, target,
                         Job.attempts == claimed.attempts, drafted_at=now):
        logger.info("job left drafting or was taken over while the model ran; draft discarded")
        return None
    session.add(draft)
    generation = draft.generation or {}
    record_event(session, EventTag.DRAFT_COMPLETED, study_id=claimed.study_id, job_id=claimed.job_id,
                 seconds=generation.get("seconds"), batch=generation.get("batch_size"),
                 warnings=len(decision.warnings))
    held = [] if claimed.shadow else [w.check.value for w in decision.warnings if w.policy == "hold"]
    if held:
        record_event(session, EventTag.DRAFT_HELD, study_id=claimed.study_id, job_id=claimed.job_id, checks=held)
    if claimed.started_at is not None and claimed.created_at is not None:
        observe_stage("queued", (claimed.started_at - claimed.created_at).total_seconds())
        observe_stage("drafting", (now - claimed.started_at).total_seconds())
    if claimed.shadow:
        finish_shadow(session, claimed.job_id, claimed.study_id, now)
        return JobState.DONE
    if held:
        logger.warning("draft held for review (%s); nothing is sent until a radiologist decides",
                       ", ".join(held))
    else:
        logger.info("draft stored; its outputs are built next")
    return target


def finish_shadow(session: Session, job_id: uuid.UUID, study_id: uuid.UUID, now: dt.datetime) -> None:
    """A shadow job ends with its draft: drafted -> done, with no output built or delivered."""
    if set_job_state(session, job_id, JobState.DRAFTED, JobState.DONE, finished_at=now):
        record_event(session, EventTag.JOB_DONE, study_id=study_id, job_id=job_id, shadow=True)
        logger.info("shadow draft stored; nothing is delivered")


def requeue(session: Session, claimed: ClaimedJob, error: TransientFailure) -> float | None:
    """Back to ``prepared`` (its inputs are kept); the delay before drafting it again, or None when
    the claim is gone."""
    if not set_job_state(session, claimed.job_id, JobState.DRAFTING, JobState.PREPARED,
                         Job.attempts == claimed.attempts,
                         error_code=error.code, error_message=error.message[:2000]):
        return None
    record_event(session, EventTag.JOB_REQUEUED, study_id=claimed.study_id, job_id=claimed.job_id,
                 code=error.code, attempts=claimed.attempts)
    logger.warning("drafting hit a transient failure (%s); job requeued", error.code)
    return TRANSIENT_RETRY_DELAY_S * claimed.attempts


def prepare_again(session: Session, claimed: ClaimedJob) -> bool:
    """Back to ``queued`` when the job's kept inputs are gone or unreadable: the prepare stage makes
    them again (the claim still counts in ``attempts``, so a store the drafting worker can never
    read fails the job after ``MAX_TRANSIENT_ATTEMPTS``).  False when the claim is gone."""
    if not set_job_state(session, claimed.job_id, JobState.DRAFTING, JobState.QUEUED,
                         Job.attempts == claimed.attempts):
        return False
    record_event(session, EventTag.JOB_REQUEUED, study_id=claimed.study_id, job_id=claimed.job_id,
                 reason="prepared inputs missing; prepared again")
    logger.warning("the job's prepared inputs are missing or unreadable; it is prepared again")
    return True


def fail(session: Session, job_id: uuid.UUID, study_id: uuid.UUID, error: RadAssistError, now: dt.datetime,
         attempts: int | None = None) -> bool:
    """Fail a drafting job with the reason; with ``attempts``, only if no other worker claimed it since."""
    fence = () if attempts is None else (Job.attempts == attempts,)
    if not set_job_state(session, job_id, JobState.DRAFTING, JobState.FAILED, *fence,
                         error_code=error.code, error_message=error.message[:2000], finished_at=now):
        return False
    record_event(session, EventTag.JOB_FAILED, study_id=study_id, job_id=job_id, code=error.code)
    JOBS_FINISHED.labels(state=str(JobState.FAILED)).inc()
    logger.warning("job failed: %s", error.code)
    return True
