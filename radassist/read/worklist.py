"""The worklist: pages of studies with their state, filters, the pager's total, counts per state.

Each page costs a fixed number of queries: one for the rows (the latest job per study comes from
an anti-join), one for the deliveries of the page's jobs.

The state a study shows is computed in SQL (so it can be filtered, counted and paged): the study's
own state (``receiving``, ``identity_conflict``) while it waits and no job is in progress for it
(also when a late instance reopened it after an earlier job), otherwise the state of its latest
job.  ``complete`` only covers the instant between the study being claimed and its job row existing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Subquery,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.orm import Session, aliased

from radassist.db.tables import Delivery, Draft, Job, Order, Study
from radassist.identifiers import accession_hash
from radassist.read.rows import (
    IN_PROGRESS_JOB_STATES,
    WAITING_STUDY_STATES,
    WORKLIST_STATES,
    DeliveryRow,
    StudyRow,
    WorklistState,
    worklist_state,
)
from radassist.safety.gate import column_checks
from radassist.states import DeliveryState, StudyState


@dataclass(frozen=True, slots=True)
class WorklistFilter:
    """What the admin narrowed the worklist to; every part optional, all parts must match."""

    state: str | None = None
    modality: str | None = None
    ae_title: str | None = None
    """The calling AE title, exactly."""
    received_from: dt.datetime | None = None
    """Last instance received at or after this instant."""
    received_to: dt.datetime | None = None
    """Last instance received before this instant."""
    accession: str | None = None
    """An accession number, matched exactly through its stored hash (the number itself is not kept)."""
    warnings: str | None = None
    """``any``: the latest draft has a safety warning; a check's name (``anatomy``...): that check fired."""


def _is_latest(job: Any) -> Any:
    """No newer job of the same study exists (a shadow job is never the study's job): an anti-join the
    planner can run either way round (from the studies' order for a plain page, from ``jobs.state`` for a
    state filter)."""
    newer = aliased(Job, name="newer_job")
    return ~(
        select(newer.id)
        .where(
            newer.study_id == job.study_id,
            newer.shadow.is_(False),
            tuple_(newer.created_at, newer.id) > tuple_(job.created_at, job.id),
        )
        .exists()
    )


def _state_column(job: Any) -> Any:
    """The worklist state as one SQL expression (the rule in the module docstring)."""
    idle = or_(job.state.is_(None), job.state.not_in(IN_PROGRESS_JOB_STATES))
    waiting = [(and_(Study.state == s, idle), literal(s.value)) for s in WAITING_STUDY_STATES]
    return type_coerce(
        case(*waiting, (job.state.is_(None), literal(StudyState.COMPLETE.value)),
             else_=type_coerce(job.state, String(32))),
        String(32),
    )


def worklist_query() -> Subquery:
    """Studies joined to their latest job, its draft and the RIS order, with the computed worklist state."""
    job = aliased(Job, name="latest_job")
    return (
        select(
            Study.id.label("id"),
            Study.study_instance_uid,
            Study.modality,
            Study.study_description,
            Study.calling_ae_title,
            Study.instance_count,
            Study.state.label("study_state"),
            Study.first_received_at,
            Study.last_received_at,
            Study.completed_at,
            Study.accession_number_hash,
            Study.patient_age,
            Study.patient_sex,
            Order.priority,
            _state_column(job).label("worklist_state"),
            job.id.label("job_id"),
            job.state.label("job_state"),
            job.attempts.label("job_attempts"),
            job.priority.label("job_priority"),
            job.model_name,
            job.error_code,
            job.error_message,
            job.created_at.label("job_created_at"),
            job.started_at.label("job_started_at"),
            job.drafted_at.label("job_drafted_at"),
            job.finished_at.label("job_finished_at"),
            Draft.id.label("draft_id"),
            Draft.warning_checks,
        )
        .select_from(Study)
        .where(Study.state != StudyState.PRIOR)  # a fetched prior is no study to draft
        .outerjoin(job, and_(job.study_id == Study.id, job.shadow.is_(False), _is_latest(job)))
        .outerjoin(Draft, Draft.job_id == job.id)
        .outerjoin(Order, Order.accession_number_hash == Study.accession_number_hash)
        .subquery("worklist")
    )


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def _failure(r: Any, deliveries: tuple[DeliveryRow, ...]) -> tuple[str | None, str | None]:
    """The reason shown on the worklist: the job's own error, else the first failed delivery's, else
    the first held one's (held: waiting for an admin)."""
    if r.error_code or r.error_message:
        return r.error_code, r.error_message
    for state, verb in ((DeliveryState.FAILED, ""), (DeliveryState.HELD, " held")):
        for d in deliveries:
            if d.state == state and (d.last_error_code or d.last_error_message):
                message = f"{d.channel.value} to {d.destination}{verb}: {d.last_error_message or ''}".rstrip(": ")
                return d.last_error_code, message
    return None, None


def study_row(r: Any, deliveries: tuple[DeliveryRow, ...]) -> StudyRow:
    """One result row of :func:`worklist_query` with its job's deliveries, as the worklist shows it."""
    error_code, error_message = _failure(r, deliveries)
    # A reopened study keeps its old completed_at; its wait only counts once it completes again.
    waiting_s = _seconds(r.last_received_at, r.completed_at) if r.study_state == StudyState.COMPLETE else None
    return StudyRow(
        id=r.id,
        study_instance_uid=r.study_instance_uid,
        modality=r.modality,
        study_description=r.study_description,
        calling_ae_title=r.calling_ae_title,
        instance_count=r.instance_count,
        state=worklist_state(r.worklist_state),
        first_received_at=r.first_received_at,
        last_received_at=r.last_received_at,
        completed_at=r.completed_at,
        job_id=r.job_id,
        job_state=r.job_state,
        job_attempts=r.job_attempts,
        model_name=r.model_name,
        job_created_at=r.job_created_at,
        job_started_at=r.job_started_at,
        job_drafted_at=r.job_drafted_at,
        job_finished_at=r.job_finished_at,
        receiving_s=_seconds(r.first_received_at, r.last_received_at),
        waiting_s=waiting_s,
        queued_s=_seconds(r.job_created_at, r.job_started_at),
        drafting_s=_seconds(r.job_started_at, r.job_drafted_at),
        delivering_s=_seconds(r.job_drafted_at, r.job_finished_at),
        total_s=_seconds(r.first_received_at, r.job_finished_at),
        error_code=error_code,
        error_message=error_message,
        has_draft=r.draft_id is not None,
        deliveries=deliveries,
        patient_age=r.patient_age,
        patient_sex=r.patient_sex,
        priority=r.priority,
        job_priority=r.job_priority,
        warnings=column_checks(r.warning_checks),
    )


def deliveries_for(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[DeliveryRow, ...]]:
    """The deliveries of each of ``job_ids``, by channel and destination."""
    if not job_ids:
        return {}
    columns = [getattr(Delivery, f.name) for f in fields(DeliveryRow)]
    result = session.execute(
        select(*columns).where(Delivery.job_id.in_(job_ids)).order_by(Delivery.job_id, Delivery.channel,
                                                                      Delivery.destination)
    )
    grouped: dict[uuid.UUID, list[DeliveryRow]] = {}
    for d in result:
        grouped.setdefault(d.job_id, []).append(DeliveryRow(**d._asdict()))
    return {job_id: tuple(rows) for job_id, rows in grouped.items()}


def _state_condition(worklist: Any, state: WorklistState) -> Any:
    """The worklist state's CASE spelled as plain column conditions, so indexes on them apply."""
    c = worklist.c
    waiting = c.study_state.in_([s.value for s in WAITING_STUDY_STATES])
    idle = or_(c.job_state.is_(None), c.job_state.not_in([s.value for s in IN_PROGRESS_JOB_STATES]))
    if state in WAITING_STUDY_STATES:
        return and_(c.study_state == state.value, idle)
    if state is StudyState.COMPLETE:
        return and_(~waiting, c.job_state.is_(None))
    if state in IN_PROGRESS_JOB_STATES:
        return c.job_state == state.value
    return and_(c.job_state == state.value, ~waiting)


def _filtered(worklist: Any, where: WorklistFilter) -> Select[Any]:
    stmt = select(worklist)
    if where.state:
        try:
            state = worklist_state(where.state)
        except ValueError:  # a state no study shows on the worklist (a fetched prior's): none is in it
            return stmt.where(false())
        stmt = stmt.where(_state_condition(worklist, state))
    if where.modality:
        stmt = stmt.where(worklist.c.modality == where.modality.strip().upper())
    if where.ae_title:
        stmt = stmt.where(worklist.c.calling_ae_title == where.ae_title.strip())
    if where.received_from is not None:
        stmt = stmt.where(worklist.c.last_received_at >= where.received_from)
    if where.received_to is not None:
        stmt = stmt.where(worklist.c.last_received_at < where.received_to)
    if where.accession and where.accession.strip():
        stmt = stmt.where(worklist.c.accession_number_hash == accession_hash(where.accession.strip()))
    if where.warnings == "any":
        stmt = stmt.where(worklist.c.warning_checks != "")
    elif where.warnings:
        stmt = stmt.where(worklist.c.warning_checks.like(f"% {where.warnings.strip()} %"))
    return stmt


def list_studies(
    session: Session,
    *,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
    where: WorklistFilter | None = None,
) -> list[StudyRow]:
    """One page of the worklist, most recently received first; ``state`` filters on the worklist state."""
    where = where or WorklistFilter(state=state)
    worklist = worklist_query()
    stmt = (
        _filtered(worklist, where)
        .order_by(worklist.c.last_received_at.desc(), worklist.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(stmt).all()
    deliveries = deliveries_for(session, [r.job_id for r in rows if r.job_id is not None])
    return [study_row(r, deliveries.get(r.job_id, ())) for r in rows]


def count_studies(
    session: Session, *, state: str | None = None, where: WorklistFilter | None = None, cap: int | None = None
) -> int:
    """How many studies the worklist holds (in ``state``, when given): the pager's total.

    With ``cap``, a state-filtered count stops at ``cap + 1`` (a pager shows "10,000+"): finding
    every study's latest job for a large history costs more than the page itself.
    """
    where = where or WorklistFilter(state=state)
    if not where.state and not where.warnings:
        # No computed column involved: count the studies table alone (no per-row job lookup).
        unfiltered = WorklistFilter(**{f.name: getattr(where, f.name) for f in fields(where) if f.name != "state"})
        studies = Study.__table__.alias("worklist")
        stmt = _filtered(studies, unfiltered).where(studies.c.state != StudyState.PRIOR)
        return int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    worklist = worklist_query()
    filtered = _filtered(worklist, where)
    if cap is not None:
        filtered = filtered.with_only_columns(worklist.c.id).limit(cap + 1)
    return int(session.execute(select(func.count()).select_from(filtered.subquery())).scalar_one())


def counts_by_state(session: Session, since: dt.datetime | None = None) -> dict[str, int]:
    """Studies per worklist state (last received at or after ``since``); every state present, zero when none."""
    worklist = worklist_query()
    counts = dict.fromkeys((s.value for s in WORKLIST_STATES), 0)
    stmt = select(worklist.c.worklist_state, func.count()).group_by(worklist.c.worklist_state)
    if since is not None:
        stmt = stmt.where(worklist.c.last_received_at >= since)
    for state, n in session.execute(stmt):
        counts[str(state)] = int(n)
    return counts
