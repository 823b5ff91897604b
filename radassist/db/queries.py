"""Read side of the worklist: pages of studies, one study's detail, and counts for /metrics.

Everything returned is a plain frozen dataclass or dict, never an ORM object, so a template or a
response schema cannot trigger a lazy load (or hold a session open).  Each page costs a fixed number
of queries: one for the rows (the latest job per study comes from a window function), one for the
deliveries of the page's jobs.

The state a study shows on the worklist is computed in SQL (so it can be filtered, counted and
paged): ``receiving`` while the study collects instances and no job is in progress for it (also
when it was reopened by a late instance after an earlier job), otherwise the state of its latest
job.  ``complete`` only covers the instant between the study being claimed and its job row existing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, String, Subquery, and_, case, func, literal, or_, select, tuple_, type_coerce
from sqlalchemy.orm import Session, aliased

from radassist.db.tables import Delivery, Draft, Event, Job, Order, Study
from radassist.events import EventTag
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState


class WorklistState(StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    QUEUED = "queued"
    DRAFTING = "drafting"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


IN_PROGRESS_JOB_STATES = (JobState.QUEUED, JobState.DRAFTING, JobState.DELIVERING)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    job_id: uuid.UUID
    channel: DeliveryChannel
    destination: str
    state: DeliveryState
    attempts: int
    last_error_code: str | None
    last_error_message: str | None
    next_attempt_at: dt.datetime | None
    first_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class StudyRow:
    """One line of the worklist: the study, its latest job, the time spent in each stage."""

    id: uuid.UUID
    study_instance_uid: str
    modality: str | None
    study_description: str | None
    calling_ae_title: str | None
    instance_count: int
    state: WorklistState
    first_received_at: dt.datetime
    last_received_at: dt.datetime
    completed_at: dt.datetime | None
    job_id: uuid.UUID | None
    job_state: JobState | None
    job_attempts: int | None
    model_name: str | None
    job_created_at: dt.datetime | None
    job_started_at: dt.datetime | None
    job_drafted_at: dt.datetime | None
    job_finished_at: dt.datetime | None
    receiving_s: float | None
    """First instance to last instance."""
    waiting_s: float | None
    """Last instance to the study being declared complete (the quiet period, as it happened)."""
    queued_s: float | None
    drafting_s: float | None
    delivering_s: float | None
    total_s: float | None
    """First instance to the job's end."""
    error_code: str | None
    error_message: str | None
    has_draft: bool
    deliveries: tuple[DeliveryRow, ...]
    patient_age: str | None = None
    patient_sex: str | None = None
    priority: str | None = None
    """The RIS order's priority (``S``, ``A``, ``R``...), when an order for the accession is known."""


@dataclass(frozen=True, slots=True)
class EventRow:
    tag: str
    at: dt.datetime
    detail: dict[str, Any]
    job_id: uuid.UUID | None
    count: int = 1
    """Runs of ``study:instance:received`` are folded into one row (a CT sends hundreds)."""
    last_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class DraftRow:
    job_id: uuid.UUID
    findings: str
    impression: str
    model_name: str
    model_revision: str | None
    prompt_version: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class JobSummary:
    id: uuid.UUID
    state: JobState
    model_name: str
    attempts: int
    error_code: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class StudyDetail:
    row: StudyRow
    jobs: tuple[JobSummary, ...]
    """Every job of the study, newest first (a reopened study has several)."""
    events: tuple[EventRow, ...]
    draft: DraftRow | None
    """The latest job's draft, when it has one."""


def _is_latest(job: Any) -> Any:
    """No newer job of the same study exists: an anti-join the planner can run either way round
    (from the studies' order for a plain page, from ``jobs.state`` for a state filter)."""
    newer = aliased(Job, name="newer_job")
    return ~(
        select(newer.id)
        .where(
            newer.study_id == job.study_id,
            tuple_(newer.created_at, newer.id) > tuple_(job.created_at, job.id),
        )
        .exists()
    )


def _worklist() -> Subquery:
    """Studies joined to their latest job and its draft, with the computed worklist state."""
    job = aliased(Job, name="latest_job")
    job_in_progress = job.state.in_(IN_PROGRESS_JOB_STATES)
    state = type_coerce(
        case(
            (
                and_(Study.state == StudyState.RECEIVING, or_(job.state.is_(None), ~job_in_progress)),
                literal(WorklistState.RECEIVING.value),
            ),
            (job.state.is_(None), literal(WorklistState.COMPLETE.value)),
            else_=type_coerce(job.state, String(32)),
        ),
        String(32),
    )
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
            state.label("worklist_state"),
            job.id.label("job_id"),
            job.state.label("job_state"),
            job.attempts.label("job_attempts"),
            job.model_name,
            job.error_code,
            job.error_message,
            job.created_at.label("job_created_at"),
            job.started_at.label("job_started_at"),
            job.drafted_at.label("job_drafted_at"),
            job.finished_at.label("job_finished_at"),
            Draft.id.label("draft_id"),
        )
        .select_from(Study)
        .outerjoin(job, and_(job.study_id == Study.id, _is_latest(job)))
        .outerjoin(Draft, Draft.job_id == job.id)
        .outerjoin(Order, Order.accession_number_hash == Study.accession_number_hash)
        .subquery("worklist")
    )


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def _failure(r: Any, deliveries: tuple[DeliveryRow, ...]) -> tuple[str | None, str | None]:
    """The reason shown on the worklist: the job's own error, else the first failed delivery's."""
    if r.error_code or r.error_message:
        return r.error_code, r.error_message
    for d in deliveries:
        if d.state == DeliveryState.FAILED and (d.last_error_code or d.last_error_message):
            message = f"{d.channel.value} to {d.destination}: {d.last_error_message or ''}".rstrip(": ")
            return d.last_error_code, message
    return None, None


def _to_row(r: Any, deliveries: tuple[DeliveryRow, ...]) -> StudyRow:
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
        state=WorklistState(r.worklist_state),
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
    )


def _deliveries_for(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[DeliveryRow, ...]]:
    if not job_ids:
        return {}
    result = session.execute(
        select(
            Delivery.job_id,
            Delivery.channel,
            Delivery.destination,
            Delivery.state,
            Delivery.attempts,
            Delivery.last_error_code,
            Delivery.last_error_message,
            Delivery.next_attempt_at,
            Delivery.first_attempt_at,
            Delivery.delivered_at,
            Delivery.id,
        )
        .where(Delivery.job_id.in_(job_ids))
        .order_by(Delivery.job_id, Delivery.channel, Delivery.destination)
    )
    grouped: dict[uuid.UUID, list[DeliveryRow]] = {}
    for d in result:
        grouped.setdefault(d.job_id, []).append(DeliveryRow(**d._asdict()))
    return {job_id: tuple(rows) for job_id, rows in grouped.items()}


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


def _state_condition(worklist: Any, state: WorklistState) -> Any:
    """The worklist state's CASE spelled as plain column conditions, so indexes on them apply."""
    c = worklist.c
    receiving = c.study_state == StudyState.RECEIVING.value
    if state is WorklistState.RECEIVING:
        return and_(receiving, or_(c.job_state.is_(None), c.job_state.not_in([s.value for s in IN_PROGRESS_JOB_STATES])))
    if state is WorklistState.COMPLETE:
        return and_(~receiving, c.job_state.is_(None))
    if JobState(state.value) in IN_PROGRESS_JOB_STATES:
        return c.job_state == state.value
    return and_(c.job_state == state.value, ~receiving)


def _filtered(worklist: Any, where: WorklistFilter) -> Select[Any]:
    from radassist.identifiers import accession_hash

    stmt = select(worklist)
    if where.state:
        stmt = stmt.where(_state_condition(worklist, WorklistState(where.state)))
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
    worklist = _worklist()
    stmt = (
        _filtered(worklist, where)
        .order_by(worklist.c.last_received_at.desc(), worklist.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(stmt).all()
    deliveries = _deliveries_for(session, [r.job_id for r in rows if r.job_id is not None])
    return [_to_row(r, deliveries.get(r.job_id, ())) for r in rows]


def count_studies(
    session: Session, *, state: str | None = None, where: WorklistFilter | None = None, cap: int | None = None
) -> int:
    """How many studies the worklist holds (in ``state``, when given): the pager's total.

    With ``cap``, a state-filtered count stops at ``cap + 1`` (a pager shows "10,000+"): finding
    every study's latest job for 90,000 done studies costs more than the page itself.
    """
    where = where or WorklistFilter(state=state)
    if not where.state:
        # No computed column involved: count the studies table alone (no per-row job lookup).
        stmt = _filtered(Study.__table__.alias("worklist"), WorklistFilter(**{**_asdict(where), "state": None}))
        return int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    worklist = _worklist()
    filtered = _filtered(worklist, where)
    if cap is not None:
        filtered = filtered.with_only_columns(worklist.c.id).limit(cap + 1)
    stmt = select(func.count()).select_from(filtered.subquery())
    return int(session.execute(stmt).scalar_one())


def _asdict(where: WorklistFilter) -> dict[str, Any]:
    return {name: getattr(where, name) for name in WorklistFilter.__slots__}


def counts_by_state(session: Session, since: dt.datetime | None = None) -> dict[str, int]:
    """Studies per worklist state (last received at or after ``since``); every state present, zero when none."""
    worklist = _worklist()
    counts = dict.fromkeys((s.value for s in WorklistState), 0)
    stmt = select(worklist.c.worklist_state, func.count()).group_by(worklist.c.worklist_state)
    if since is not None:
        stmt = stmt.where(worklist.c.last_received_at >= since)
    for state, n in session.execute(stmt):
        counts[str(state)] = int(n)
    return counts


def _events_for(session: Session, study_id: uuid.UUID) -> tuple[EventRow, ...]:
    job_ids = select(Job.id).where(Job.study_id == study_id)
    result = session.execute(
        select(Event.tag, Event.at, Event.detail, Event.job_id)
        .where(or_(Event.study_id == study_id, Event.job_id.in_(job_ids)))
        .order_by(Event.at, Event.id)
    )
    events: list[EventRow] = []
    for e in result:
        previous = events[-1] if events else None
        if (
            previous is not None
            and e.tag == EventTag.INSTANCE_RECEIVED
            and previous.tag == EventTag.INSTANCE_RECEIVED
        ):
            events[-1] = EventRow(
                tag=previous.tag,
                at=previous.at,
                detail=previous.detail,
                job_id=previous.job_id,
                count=previous.count + 1,
                last_at=e.at,
            )
            continue
        events.append(EventRow(tag=e.tag, at=e.at, detail=dict(e.detail or {}), job_id=e.job_id))
    return tuple(events)


def study_detail(session: Session, study_id: uuid.UUID) -> StudyDetail | None:
    """The study's worklist row, every job, the folded event timeline and the latest draft."""
    worklist = _worklist()
    r = session.execute(select(worklist).where(worklist.c.id == study_id)).one_or_none()
    if r is None:
        return None
    deliveries = _deliveries_for(session, [r.job_id] if r.job_id is not None else [])
    row = _to_row(r, deliveries.get(r.job_id, ()))
    jobs = tuple(
        JobSummary(**j._asdict())
        for j in session.execute(
            select(
                Job.id,
                Job.state,
                Job.model_name,
                Job.attempts,
                Job.error_code,
                Job.created_at,
                Job.finished_at,
            )
            .where(Job.study_id == study_id)
            .order_by(Job.created_at.desc(), Job.id.desc())
        )
    )
    draft = None
    if r.draft_id is not None:
        d = session.execute(
            select(
                Draft.job_id,
                Draft.findings,
                Draft.impression,
                Draft.model_name,
                Draft.model_revision,
                Draft.prompt_version,
                Draft.created_at,
            ).where(Draft.id == r.draft_id)
        ).one()
        draft = DraftRow(**d._asdict())
    return StudyDetail(row=row, jobs=jobs, events=_events_for(session, study_id), draft=draft)


# --- counts for the /metrics gauges (label values are enum values and error codes only) ---


def job_counts_by_state(session: Session) -> dict[str, int]:
    counts = dict.fromkeys((s.value for s in JobState), 0)
    for state, n in session.execute(select(Job.state, func.count()).group_by(Job.state)):
        counts[JobState(state).value] = int(n)
    return counts


def delivery_counts(session: Session) -> dict[tuple[str, str], int]:
    """Deliveries per (channel, state); every combination is present."""
    counts = {(c.value, s.value): 0 for c in DeliveryChannel for s in DeliveryState}
    stmt = select(Delivery.channel, Delivery.state, func.count()).group_by(Delivery.channel, Delivery.state)
    for channel, state, n in session.execute(stmt):
        counts[(DeliveryChannel(channel).value, DeliveryState(state).value)] = int(n)
    return counts


def failure_counts(session: Session) -> dict[tuple[str, str], int]:
    """Failed jobs and failed deliveries per (source, error code); ``unknown`` when no code was kept."""
    counts: Counter[tuple[str, str]] = Counter()
    jobs = select(Job.error_code, func.count()).where(Job.state == JobState.FAILED).group_by(Job.error_code)
    for code, n in session.execute(jobs):
        counts[("job", code or "unknown")] += int(n)
    deliveries = (
        select(Delivery.last_error_code, func.count())
        .where(Delivery.state == DeliveryState.FAILED)
        .group_by(Delivery.last_error_code)
    )
    for code, n in session.execute(deliveries):
        counts[("delivery", code or "unknown")] += int(n)
    return dict(counts)


# --- the study page's extras: series, what the model saw and was told, the associations ---


@dataclass(frozen=True, slots=True)
class SeriesRow:
    series_instance_uid: str
    modality: str | None
    series_number: int | None
    series_description: str | None
    instance_count: int


@dataclass(frozen=True, slots=True)
class AssociationRow:
    started_at: dt.datetime
    ended_at: dt.datetime | None
    calling_ae_title: str
    called_ae_title: str
    peer_host: str
    outcome: str
    reason: str | None
    instances_stored: int
    instances_failed: int


@dataclass(frozen=True, slots=True)
class StudyExtras:
    series: tuple[SeriesRow, ...]
    prompt: str | None
    generation: dict[str, Any]
    source_sop_instance_uids: tuple[str, ...]
    consistency_warnings: tuple[str, ...]
    associations: tuple[AssociationRow, ...]
    series_chosen: dict[str, Any] | None = None
    """Which series of a volume the model saw, and how many of its slices (from the generation record)."""


def _has_table(session: Session, name: str) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(session.connection()).has_table(name))


def study_extras(session: Session, detail: StudyDetail) -> StudyExtras:
    """Series, the latest draft's prompt and generation record, and the associations that brought the study."""
    from radassist.db.tables import Series

    row = detail.row
    series = tuple(
        SeriesRow(**r._asdict())
        for r in session.execute(
            select(Series.series_instance_uid, Series.modality, Series.series_number, Series.series_description,
                   Series.instance_count)
            .where(Series.study_id == row.id)
            .order_by(Series.series_number, Series.series_instance_uid)
        )
    )
    prompt, generation = None, {}
    if detail.draft is not None:
        d = session.execute(select(Draft.prompt, Draft.generation).where(Draft.job_id == detail.draft.job_id)).one()
        prompt, generation = d.prompt, dict(d.generation or {})
    warnings = generation.get("consistency_warnings") or ()
    associations: tuple[AssociationRow, ...] = ()
    if row.calling_ae_title and _has_table(session, "associations"):
        from radassist.db.tables import Association

        # The study's associations: from its calling AE, open at some time while it was received.
        slack = dt.timedelta(seconds=5)
        associations = tuple(
            AssociationRow(**a._asdict())
            for a in session.execute(
                select(Association.started_at, Association.ended_at, Association.calling_ae_title,
                       Association.called_ae_title, Association.peer_host, Association.outcome, Association.reason,
                       Association.instances_stored, Association.instances_failed)
                .where(Association.calling_ae_title == row.calling_ae_title,
                       Association.started_at <= row.last_received_at + slack,
                       or_(Association.ended_at.is_(None), Association.ended_at >= row.first_received_at - slack))
                .order_by(Association.started_at)
                .limit(100)
            )
        )
    return StudyExtras(
        series=series,
        prompt=prompt,
        generation=generation,
        source_sop_instance_uids=tuple(str(u) for u in generation.get("source_sop_instance_uids") or ()),
        consistency_warnings=tuple(str(w) for w in warnings) if isinstance(warnings, (list, tuple)) else (str(warnings),),
        associations=associations,
        series_chosen=generation.get("series_chosen") if isinstance(generation.get("series_chosen"), dict) else None,
    )


def instance_path(session: Session, study_id: uuid.UUID, sop_instance_uid: str) -> str | None:
    """The stored file (relative to the instances folder) of one instance of this study."""
    from radassist.db.tables import Instance

    return session.scalar(
        select(Instance.path).where(Instance.study_id == study_id, Instance.sop_instance_uid == sop_instance_uid)
    )


def recent_counts(session: Session, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Studies per worklist state received in the last hour and the last day (the system page)."""
    return {
        "hour": counts_by_state(session, since=now - dt.timedelta(hours=1)),
        "day": counts_by_state(session, since=now - dt.timedelta(days=1)),
    }
