"""Rows the prepared-store tests keep a job's inputs under.

The store's database backend keeps its blobs under a job row, and retention removes a job's kept
inputs with its study once the study is old enough; both the backend tests and the file store's
tests need the same finished job, so it is written once here.
"""

from __future__ import annotations

import datetime as dt
import uuid

from pydicom.uid import generate_uid
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.tables import Job, Study
from radassist.states import JobState, StudyState


def add_done_job(maker: sessionmaker[Session], done_at: dt.datetime) -> uuid.UUID:
    """A complete study with one done job, both finished at ``done_at`` (retention's age is read from it)."""
    with maker.begin() as session:
        study = Study(study_instance_uid=generate_uid(), state=StudyState.COMPLETE, completed_at=done_at)
        session.add(study)
        session.flush()
        job = Job(study_id=study.id, model_name="m", state=JobState.DONE, created_at=done_at, finished_at=done_at)
        session.add(job)
        session.flush()
        return job.id
