"""A job's priority: STAT when the RIS order says so (HL7 table 0027 ``S``) or its pipeline is STAT.

The order's priority is read at completion, when the job is made; an order that arrives later and
says STAT raises the study's unfinished jobs to STAT, so the claims still take them first (a
message already in a broker queue keeps the place it was sent with).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from radassist.db.tables import Job, Order, Study
from radassist.states import JobPriority, JobState

STAT_CODES = frozenset({"S", "STAT"})
"""Priority values that mean STAT: HL7 table 0027 ``S`` (TQ1-9, ORC-7.6, OBR-27.6) and the word itself."""

UNFINISHED = (JobState.PRIORS, JobState.QUEUED, JobState.DRAFTING, JobState.DRAFTED, JobState.DELIVERING)


def is_stat(priority: str | None) -> bool:
    """True for an order priority meaning STAT (its first component, any case)."""
    return (priority or "").split("^", 1)[0].strip().upper() in STAT_CODES


def job_priority(session: Session, study_id: uuid.UUID, *, pipeline_stat: bool) -> JobPriority:
    """STAT when the study's pipeline is STAT or its RIS order says STAT; else routine."""
    if pipeline_stat:
        return JobPriority.STAT
    ordered = session.scalar(
        select(Order.priority)
        .join(Study, Study.accession_number_hash == Order.accession_number_hash)
        .where(Study.id == study_id)
    )
    return JobPriority.STAT if is_stat(ordered) else JobPriority.ROUTINE


def raise_to_stat(session: Session, study_id: uuid.UUID) -> int:
    """Make the study's unfinished jobs STAT (an order saying STAT arrived after completion); how many."""
    changed = session.execute(
        update(Job)
        .where(Job.study_id == study_id, Job.state.in_(UNFINISHED), Job.priority != JobPriority.STAT,
               Job.shadow.is_(False))
        .values(priority=JobPriority.STAT)
        .execution_options(synchronize_session=False)
    )
    return int(changed.rowcount or 0)  # type: ignore[attr-defined]


__all__ = ["STAT_CODES", "is_stat", "job_priority", "raise_to_stat"]
