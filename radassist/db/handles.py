"""Small look-ups by id for the process working on a job: its study's handle (for the log context), its priority."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Delivery, Job, Study
from radassist.identifiers import study_handle
from radassist.states import JobPriority


def handle_of_study(session: Session, study_id: uuid.UUID) -> str:
    """The handle of the study (``-`` when there is no such study)."""
    return study_handle(session.scalar(select(Study.study_instance_uid).where(Study.id == study_id)))


def handle_of_job(session: Session, job_id: uuid.UUID) -> str:
    """The handle of the job's study (``-`` when there is no such job)."""
    return study_handle(session.scalar(
        select(Study.study_instance_uid).join(Job, Job.study_id == Study.id).where(Job.id == job_id)))


def job_priorities(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, JobPriority]:
    """The priority of each job (a job not found is absent): its messages are sent with it."""
    if not job_ids:
        return {}
    rows = session.execute(select(Job.id, Job.priority).where(Job.id.in_(job_ids)))
    return {job_id: priority for job_id, priority in rows}


def delivery_priorities(session: Session, delivery_ids: list[uuid.UUID]) -> dict[uuid.UUID, JobPriority]:
    """The priority of each delivery's job (a delivery not found is absent)."""
    if not delivery_ids:
        return {}
    rows = session.execute(select(Delivery.id, Job.priority).join(Job, Job.id == Delivery.job_id)
                           .where(Delivery.id.in_(delivery_ids)))
    return {delivery_id: priority for delivery_id, priority in rows}


def priorities_of(session: Session, job_ids: list[uuid.UUID],
                  delivery_ids: list[uuid.UUID] | None = None) -> dict[uuid.UUID, JobPriority]:
    """The priority of each job, and of each delivery's job, keyed by the job's or the delivery's id
    (ids are UUIDs, so the two never collide): what a sender of both needs."""
    return {**job_priorities(session, job_ids), **delivery_priorities(session, delivery_ids or [])}
