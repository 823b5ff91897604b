"""A radiologist's verdict on a draft: useful as is, with edits, or not useful; the reasons, an
optional corrected text, and the time it took.

One verdict per draft and user: giving it again replaces it.  Each is audited (the verdict and the
reason codes; the corrected text stays in ``draft_verdicts``) and leaves an event on the study's
timeline.  The quality measures read the table (:mod:`radassist.quality`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.actions.outcome import ActionResult, done, refused
from radassist.db.base import utcnow
from radassist.db.tables import Draft, DraftVerdict, Job, Verdict, VerdictReason
from radassist.events import EventTag, record_event

CORRECTED_TEXT_MAX_CHARS = 20_000
SECONDS_MAX = 24 * 3600.0


@dataclass(frozen=True)
class VerdictInput:
    """What the reviewer said; checked by :func:`give_verdict`."""

    verdict: Verdict
    reasons: tuple[VerdictReason, ...] = ()
    corrected_text: str | None = None
    seconds_spent: float | None = None


def _problem(given: VerdictInput) -> str | None:
    """Why the verdict cannot be kept, or None."""
    if given.corrected_text is not None and len(given.corrected_text) > CORRECTED_TEXT_MAX_CHARS:
        return f"the corrected text is longer than {CORRECTED_TEXT_MAX_CHARS} characters"
    if given.seconds_spent is not None and not 0 <= given.seconds_spent <= SECONDS_MAX:
        return "the time spent must be between 0 and 24 hours"
    if given.verdict is not Verdict.USEFUL_AS_IS and not given.reasons:
        return "a draft that needed edits or was not useful needs at least one reason"
    return None


def _ordered(reasons: Sequence[VerdictReason]) -> list[str]:
    return [r.value for r in VerdictReason if r in set(reasons)]


def give_verdict(session: Session, job_id: uuid.UUID, user: str, given: VerdictInput) -> ActionResult:
    """Keep ``user``'s verdict on the draft of ``job_id`` (replacing their earlier one)."""
    target = str(job_id)
    job = session.get(Job, job_id)
    draft_id = session.scalar(select(Draft.id).where(Draft.job_id == job_id))
    if job is None or draft_id is None:
        return refused(session, user, "verdict", target, "no such job, or it has no draft")
    problem = _problem(given)
    if problem is not None:
        return refused(session, user, "verdict", target, problem)
    corrected = (given.corrected_text or "").strip() or None
    row = session.scalar(select(DraftVerdict).where(DraftVerdict.draft_id == draft_id, DraftVerdict.user_name == user))
    if row is None:
        row = DraftVerdict(draft_id=draft_id, job_id=job_id, user_name=user)
        session.add(row)
    row.verdict = given.verdict
    row.reasons = _ordered(given.reasons)
    row.corrected_text = corrected
    row.seconds_spent = given.seconds_spent
    row.created_at = utcnow()
    record_event(session, EventTag.VERDICT_GIVEN, study_id=job.study_id, job_id=job_id, verdict=given.verdict.value,
                 reasons=row.reasons, corrected=corrected is not None, by=user)
    return done(session, user, "verdict", target, "verdict kept", verdict=given.verdict.value, reasons=row.reasons)
