"""Removing one done study's files: rows first, then files, in one transaction that holds the study.

The study row is locked (a write to it: PostgreSQL's row lock; SQLite's write lock, taken in the
listeners' write turn) before the study is checked once more, so an instance arriving meanwhile
either reopened it before (and it is left alone) or waits until the removal is committed; it then
finds its own file gone if it landed in the removed folder, and its sender is told to try again
(:func:`radassist.intake.record._check_file`).  Files are removed before the commit: a failed commit
leaves rows without files for a study that was being removed anyway, and the next run finishes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import uuid
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.engine import write_turn
from radassist.db.study_turn import take_study_turn
from radassist.db.tables import Instance, Job, Series, Study
from radassist.events import EventTag, record_event
from radassist.identifiers import study_handle
from radassist.read.rows import Freed
from radassist.retention.candidates import done_studies
from radassist.store.durable import fsync_dir
from radassist.store.instances import InstanceStore
from radassist.store.prepared import PreparedStore

logger = logging.getLogger(__name__)


def remove_study(
    session_factory: sessionmaker[Session],
    instances: InstanceStore,
    outputs_root: Path,
    study_id: uuid.UUID,
    *,
    reason: str,
    now: dt.datetime,
    prepared: PreparedStore | None = None,
) -> Freed | None:
    """Remove a done study's instances, outputs and the inputs kept for its questions (``prepared``);
    None when it is no longer done (left alone)."""
    with write_turn(session_factory), session_factory() as session:
        take_study_turn(session, study_id)  # from here on the study is ours until the commit
        study = session.execute(done_studies(study_id=study_id)).one_or_none()
        if study is None:
            session.rollback()
            return None
        paths = session.scalars(select(Instance.path).where(Instance.study_id == study_id)).all()
        job_ids = session.scalars(select(Job.id).where(Job.study_id == study_id)).all()
        session.execute(delete(Instance).where(Instance.study_id == study_id))
        session.execute(delete(Series).where(Series.study_id == study_id))
        session.execute(update(Study).where(Study.id == study_id).values(files_removed_at=now))
        files, size = _remove_tree(instances.path(instances.study_folder(study.study_instance_uid)))
        for relpath in paths:  # any recorded file outside the study's folder
            f, s = _remove_file(instances, relpath)
            files, size = files + f, size + s
        for job_id in job_ids:
            f, s = _remove_tree(outputs_root / job_id.hex[:2] / str(job_id))
            files, size = files + f, size + s
            if prepared is not None:
                f, s = prepared.remove(job_id, session=session)
                files, size = files + f, size + s
        record_event(session, EventTag.FILES_REMOVED, study_id=study_id, reason=reason, files=files,
                     bytes=size, instances=len(paths), jobs=len(job_ids))
        session.commit()
    logger.info("removed the files of study %s (%s): %d files, %d bytes",
                study_handle(study.study_instance_uid), reason, files, size)
    return Freed(1, files, size)


def _remove_file(instances: InstanceStore, relpath: str) -> tuple[int, int]:
    try:
        path = instances.path(relpath)
        size = path.stat().st_size
        path.unlink()
    except (FileNotFoundError, ValueError):
        return 0, 0
    return 1, size


def _remove_tree(folder: Path) -> tuple[int, int]:
    """Remove a folder and everything in it; the number of files and bytes removed (0, 0 if absent)."""
    if not folder.is_dir():
        return 0, 0
    files = size = 0
    for parent, dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = Path(parent, name)
            try:
                size += path.lstat().st_size
                path.unlink()
                files += 1
            except FileNotFoundError:
                continue
        for name in dirs:
            with contextlib.suppress(OSError):  # an instance landed meanwhile: intake sees it kept
                Path(parent, name).rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()
    try:
        fsync_dir(folder.parent)
    except OSError:
        logger.warning("could not fsync a folder after removing a study's files")
    return files, size
