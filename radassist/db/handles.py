"""The study handle of a job or study, for the log context of the process working on it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Job, Study
from radassist.identifiers import study_handle


def handle_of_study(session: Session, study_id: uuid.UUID) -> str:
    """The handle of the study (``-`` when there is no such study)."""
    return study_handle(session.scalar(select(Study.study_instance_uid).where(Study.id == study_id)))


def handle_of_job(session: Session, job_id: uuid.UUID) -> str:
    """The handle of the job's study (``-`` when there is no such job)."""
    return study_handle(session.scalar(
        select(Study.study_instance_uid).join(Job, Job.study_id == Study.id).where(Job.id == job_id)))
