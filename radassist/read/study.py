"""The study page: its worklist row, every job, the folded timeline, the latest draft, and what the
model saw and was told; also the stored file behind one of its thumbnails."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import fields
from typing import Any

from sqlalchemy import func, inspect, or_, select
from sqlalchemy.orm import Session

from radassist.db.tables import Association, Draft, Event, Instance, Job, Series
from radassist.events import EventTag
from radassist.read.grounding import grounding_view
from radassist.read.priors import comparison_row
from radassist.read.review import review_view
from radassist.read.rows import (
    AssociationRow,
    DraftRow,
    EventRow,
    JobRow,
    PatientGroupRow,
    SeriesRow,
    StudyRow,
    StudyView,
)
from radassist.read.worklist import deliveries_for, study_row, worklist_query

ASSOCIATION_SLACK = dt.timedelta(seconds=5)
"""An association counts as the study's when it was open within this long of the study's instances."""


def _columns(entity: Any, row_type: type, *, leave_out: tuple[str, ...] = ()) -> list[Any]:
    """The entity's columns named like the row type's fields."""
    return [getattr(entity, f.name) for f in fields(row_type) if f.name not in leave_out]


def _jobs(session: Session, study_id: uuid.UUID) -> tuple[JobRow, ...]:
    # The study's own jobs first, newest first (the first is the one the page acts on), then shadow jobs.
    stmt = (select(*_columns(Job, JobRow)).where(Job.study_id == study_id)
            .order_by(Job.shadow, Job.created_at.desc(), Job.id.desc()))
    return tuple(JobRow(**j._asdict()) for j in session.execute(stmt))


def _events(session: Session, study_id: uuid.UUID) -> tuple[EventRow, ...]:
    """The timeline in the order the events were written (the database's own sequence, which no
    process's clock can reorder: the listener, the workers and the web app may run on hosts whose
    clocks differ); each run of ``study:instance:received`` folded into one row."""
    job_ids = select(Job.id).where(Job.study_id == study_id)
    result = session.execute(
        select(Event.tag, Event.at, Event.detail, Event.job_id)
        .where(or_(Event.study_id == study_id, Event.job_id.in_(job_ids)))
        .order_by(Event.id)
    )
    events: list[EventRow] = []
    for e in result:
        previous = events[-1] if events else None
        if previous is not None and e.tag == EventTag.INSTANCE_RECEIVED and previous.tag == EventTag.INSTANCE_RECEIVED:
            events[-1] = EventRow(tag=previous.tag, at=previous.at, detail=previous.detail, job_id=previous.job_id,
                                  count=previous.count + 1, last_at=e.at)
            continue
        events.append(EventRow(tag=e.tag, at=e.at, detail=dict(e.detail or {}), job_id=e.job_id))
    return tuple(events)


def _series(session: Session, study_id: uuid.UUID) -> tuple[SeriesRow, ...]:
    stmt = (
        select(*_columns(Series, SeriesRow))
        .where(Series.study_id == study_id)
        .order_by(Series.series_number, Series.series_instance_uid)
    )
    return tuple(SeriesRow(**r._asdict()) for r in session.execute(stmt))


def _associations(session: Session, row: StudyRow) -> tuple[AssociationRow, ...]:
    """From the study's calling AE, open at some time while it was received."""
    if not row.calling_ae_title or not inspect(session.connection()).has_table("associations"):
        return ()
    stmt = (
        select(*_columns(Association, AssociationRow))
        .where(Association.calling_ae_title == row.calling_ae_title,
               Association.started_at <= row.last_received_at + ASSOCIATION_SLACK,
               or_(Association.ended_at.is_(None), Association.ended_at >= row.first_received_at - ASSOCIATION_SLACK))
        .order_by(Association.started_at)
        .limit(100)
    )
    return tuple(AssociationRow(**a._asdict()) for a in session.execute(stmt))


def _draft(session: Session, draft_id: uuid.UUID | None) -> tuple[DraftRow | None, dict[str, Any]]:
    """The latest job's draft and the prompt and generation record kept with it."""
    if draft_id is None:
        return None, {}
    columns = _columns(Draft, DraftRow, leave_out=("verified",))
    d = session.execute(select(*columns, Draft.prompt, Draft.generation).where(Draft.id == draft_id)).one()
    record = d._asdict()
    prompt, generation = record.pop("prompt"), dict(record.pop("generation") or {})
    return DraftRow(**record), {**generation, "prompt": prompt}


def _what_the_model_saw(record: dict[str, Any]) -> dict[str, Any]:
    warnings = record.get("consistency_warnings") or ()
    chosen = record.get("series_chosen")
    return {
        "prompt": record.get("prompt"),
        "consistency_warnings": tuple(str(w) for w in warnings) if isinstance(warnings, (list, tuple))
        else (str(warnings),),
        "series_chosen": chosen if isinstance(chosen, dict) else None,
        "source_sop_instance_uids": tuple(str(u) for u in record.get("source_sop_instance_uids") or ()),
    }


def study_view(session: Session, study_id: uuid.UUID) -> StudyView | None:
    """Everything the study page shows, or None when there is no such study."""
    worklist = worklist_query()
    r = session.execute(select(worklist).where(worklist.c.id == study_id)).one_or_none()
    if r is None:
        return None
    deliveries = deliveries_for(session, [r.job_id] if r.job_id is not None else [])
    row = study_row(r, deliveries.get(r.job_id, ()))
    draft, record = _draft(session, r.draft_id)
    return StudyView(
        **{f.name: getattr(row, f.name) for f in fields(StudyRow)},
        jobs=_jobs(session, study_id),
        events=_events(session, study_id),
        draft=draft,
        series=_series(session, study_id),
        associations=_associations(session, row),
        patient_groups=_patient_groups(session, study_id) if row.state == "identity_conflict" else (),
        grounding=grounding_view(record),
        comparison=comparison_row(session, r.job_id),
        review=review_view(session, r.draft_id),
        **_what_the_model_saw(record),
    )


def _patient_groups(session: Session, study_id: uuid.UUID) -> tuple[PatientGroupRow, ...]:
    """The study's instances grouped by the patient they name, first arrived first."""
    first = func.min(Instance.received_at)
    groups = session.execute(
        select(Instance.patient_key, func.count(), first)
        .where(Instance.study_id == study_id, Instance.patient_key.is_not(None))
        .group_by(Instance.patient_key)
        .order_by(first)
    ).all()
    out = []
    for n, (key, count, first_at) in enumerate(groups):
        instance_id, _ = session.execute(
            select(Instance.id, Instance.received_at).where(Instance.study_id == study_id, Instance.patient_key == key)
            .order_by(Instance.received_at, Instance.id).limit(1)
        ).one()
        descriptions = session.scalars(
            select(Series.series_description).distinct().join(Instance, Instance.series_id == Series.id)
            .where(Instance.study_id == study_id, Instance.patient_key == key, Series.series_description.is_not(None))
        ).all()
        out.append(PatientGroupRow(label=chr(ord("A") + n) if n < 26 else str(n + 1), instances=int(count),
                                   first_received_at=first_at, instance_id=instance_id,
                                   series_descriptions=tuple(sorted(str(d) for d in descriptions))))
    return tuple(out)


def instance_path(session: Session, study_id: uuid.UUID, sop_instance_uid: str) -> str | None:
    """The stored file (relative to the instances folder) of one instance of this study."""
    return session.scalar(
        select(Instance.path).where(Instance.study_id == study_id, Instance.sop_instance_uid == sop_instance_uid)
    )
