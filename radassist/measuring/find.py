"""Which drafts wait to be measured: those whose study has a newer final report than any they were measured against.

A draft is joined to its study's signed reports by the accession number's hash (the only form in
which a study keeps it).  Only the newest final or corrected report of an accession counts; a draft
already measured against it (successfully or not) waits for nothing.  Any draft qualifies, whatever
its job's state (a shadow job's draft too), except that of a job cancelled because its study grew
(``job.superseded``): drafted from part of the study, never sent, it would count against its model
for images it was never shown; the newer job's draft of the whole study is measured instead.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, exists, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from radassist.completion.supersede import SUPERSEDED_CODE
from radassist.db.tables import Draft, DraftMeasurement, Job, Report, Study
from radassist.ris.context import FINAL_STATUSES
from radassist.states import JobState


def newest_report(session: Session, accession_number_hash: str | None) -> Report | None:
    """The accession's newest final or corrected report (received last; the id breaks a tie), as the sweep sees it."""
    if not accession_number_hash:
        return None
    return session.scalars(
        select(Report)
        .where(Report.accession_number_hash == accession_number_hash, Report.status.in_(FINAL_STATUSES))
        .order_by(Report.received_at.desc(), Report.id.desc())
        .limit(1)
    ).first()


def drafts_to_measure(session: Session, limit: int) -> list[uuid.UUID]:
    """Up to ``limit`` drafts with a newest final report and no measurement against it, oldest draft first."""
    newer = aliased(Report, name="newer_report")
    is_newest = ~exists().where(
        newer.accession_number_hash == Report.accession_number_hash,
        newer.status.in_(FINAL_STATUSES),
        tuple_(newer.received_at, newer.id) > tuple_(Report.received_at, Report.id),
    )
    measured = exists().where(DraftMeasurement.draft_id == Draft.id, DraftMeasurement.report_id == Report.id)
    stmt = (
        select(Draft.id)
        .join(Job, Job.id == Draft.job_id)
        .join(Study, Study.id == Job.study_id)
        .join(Report, and_(Report.accession_number_hash == Study.accession_number_hash,
                           Report.status.in_(FINAL_STATUSES)))
        .where(is_newest, ~measured,
               or_(Job.state != JobState.CANCELLED, Job.error_code.is_distinct_from(SUPERSEDED_CODE)))
        .order_by(Draft.created_at, Draft.id)
        .limit(limit)
    )
    return list(dict.fromkeys(session.scalars(stmt)))
