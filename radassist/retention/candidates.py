"""Which studies are done, and since when: the rule of what retention may remove, in one query."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from radassist.db.tables import Job, JobPrior, Study
from radassist.states import FINAL_JOB_STATES, JobState, StudyState

DoneQuery = Select[uuid.UUID, str, str | None, dt.datetime]


@dataclass(frozen=True)
class DoneStudy:
    id: uuid.UUID
    study_instance_uid: str
    called_ae_title: str | None
    done_at: dt.datetime


def done_studies(
    *,
    called_ae_titles: Collection[str] | None = None,
    exclude_called_ae_titles: Collection[str] = (),
    done_before: dt.datetime | None = None,
    study_id: uuid.UUID | None = None,
) -> DoneQuery:
    """Studies whose files may go, oldest done first: complete, files still on disk, no job in
    progress, and the latest job done (every delivery delivered), or no job at all (nothing to draft).
    A fetched prior (state ``prior``, which has no job of its own) is done once it was last compared
    with; no study goes while a job in progress compares with it.

    ``done_at`` is when the latest job finished, or when the study completed (a prior: when it was
    last compared with) if it has no job.
    """
    latest, newer, active, comparing = aliased(Job), aliased(Job), aliased(Job), aliased(Job)
    done_at = func.coalesce(latest.finished_at, Study.completed_at)
    is_latest = ~exists().where(
        newer.study_id == Study.id,
        newer.shadow.is_(False),
        or_(newer.created_at > latest.created_at, and_(newer.created_at == latest.created_at, newer.id > latest.id)),
    )
    in_progress = exists().where(active.study_id == Study.id, active.state.not_in(list(FINAL_JOB_STATES)))
    compared_with = exists().where(JobPrior.prior_study_id == Study.id, comparing.id == JobPrior.job_id,
                                   comparing.state.not_in(list(FINAL_JOB_STATES)))
    conditions: list[ColumnElement[bool]] = [
        Study.state.in_([StudyState.COMPLETE, StudyState.PRIOR]),
        ~compared_with,
        Study.files_removed_at.is_(None),
        Study.completed_at.is_not(None),
        ~in_progress,
        or_(latest.id.is_(None), and_(latest.state == JobState.DONE, latest.finished_at.is_not(None))),
        is_latest,
    ]
    if done_before is not None:
        conditions.append(done_at <= done_before)
    if called_ae_titles is not None:
        conditions.append(Study.called_ae_title.in_(list(called_ae_titles)))
    if exclude_called_ae_titles:
        conditions.append(
            Study.called_ae_title.is_(None) | Study.called_ae_title.not_in(list(exclude_called_ae_titles))
        )
    if study_id is not None:
        conditions.append(Study.id == study_id)
    return (
        select(Study.id, Study.study_instance_uid, Study.called_ae_title, done_at.label("done_at"))
        .outerjoin(latest, and_(latest.study_id == Study.id, latest.shadow.is_(False)))
        .where(*conditions)
        .order_by(done_at, Study.id)
    )


def fetch(session: Session, query: DoneQuery, limit: int) -> list[DoneStudy]:
    return [DoneStudy(id_, uid, called, done_at) for id_, uid, called, done_at in session.execute(query.limit(limit))]
