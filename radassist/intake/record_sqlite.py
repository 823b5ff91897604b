"""Recording a new instance on SQLite with the DBAPI cursor: the common case, several to a transaction.

Most of the listener's database time per instance went to SQLAlchemy's execution machinery (a
session, five compiled statements, their result objects), not to SQLite, which runs each statement
in a few microseconds.  This module writes the most common instance by plain SQL on a ``sqlite3``
cursor, with the values converted by the columns' own SQLAlchemy types, so the rows are exactly
those :func:`radassist.intake.record.record_instance` writes.  The common case is:

- its study and series are known to this process (their ids are cached by ``record_instance``,
  which therefore records the first instance of every study and series);
- its SOP Instance UID is new;
- it names the study's patient (or the study or the instance names none), so nothing is held;
- it does not reopen a ``complete`` study (a reopen, and the check for our own SR, stay there);
- its file is still in place (retention has not removed its study's folder meanwhile).

:func:`record_new` checks all of that inside the caller's write transaction (``BEGIN IMMEDIATE``:
the study's row cannot change under it), before anything is written, and returns None having
written nothing when one does not hold: the caller then records the instance with
``record_instance``, which applies every rule.  Several instances can be recorded in one
transaction and committed together (:mod:`dicom_node.group_commit`): each is checked against the
rows as the instances before it in the same transaction left them.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect

from radassist.db.base import utcnow
from radassist.events import EventTag
from radassist.intake.header import InstanceHeader
from radassist.intake.known_ids import known_ids
from radassist.intake.record_steps import EVENTS, INSTANCES, STUDIES
from radassist.states import StudyState
from radassist.store.instances import StoredFile

_GUARD = "SELECT state, patient_key, files_removed_at IS NOT NULL FROM studies WHERE id = ?"
_INSERT_INSTANCE = (
    "INSERT INTO instances (id, series_id, study_id, sop_instance_uid, sop_class_uid, transfer_syntax_uid,"
    " instance_number, path, size_bytes, patient_key, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (sop_instance_uid) DO NOTHING"
)
_COUNT_SERIES = "UPDATE series SET instance_count = instance_count + 1 WHERE id = ?"
_COUNT_STUDY = (
    "UPDATE studies SET instance_count = instance_count + 1,"
    " last_received_at = CASE WHEN last_received_at < ? THEN ? ELSE last_received_at END,"
    " modality = coalesce(modality, ?), patient_key = coalesce(patient_key, ?){files_again}"
    " WHERE id = ?"
)
_COUNT_STUDY_WITH_FILES = _COUNT_STUDY.format(files_again="")
"""The common case: retention has not removed the study's files.  SQLite rewrites the entry of every
index over a column the ``SET`` names, changed or not, so naming ``files_removed_at`` here would
write one more page of ``ix_studies_files_removed_at_state`` to the WAL for every instance."""
_COUNT_STUDY_WITH_FILES_AGAIN = _COUNT_STUDY.format(files_again=", files_removed_at = NULL")
"""An instance of a study whose files retention removed: it has files again, retention judges anew."""
_INSERT_EVENT = "INSERT INTO events (study_id, job_id, tag, detail, at) VALUES (?, NULL, ?, ?, ?)"
_RECEIVED = str(EventTag.INSTANCE_RECEIVED)
_COMPLETE = str(StudyState.COMPLETE)


@dataclass(frozen=True)
class NewInstance:
    """One instance for :func:`record_new`, with the ids and keys ``record_instance`` would use."""

    header: InstanceHeader
    stored: StoredFile
    study_id: uuid.UUID
    series_id: uuid.UUID
    patient_key: str | None
    calling_ae: str
    reopen_study: bool
    now: dt.datetime
    data: bytes | None = None
    """The bytes written to the file, when they may be made durable in the commit instead of by the
    file's flush (:mod:`dicom_node.group_commit` decides by their size)."""


def new_instance(
    database: str,
    header: InstanceHeader,
    stored: StoredFile,
    *,
    patient_key: str | None,
    calling_ae: str,
    reopen_study: bool,
    now: dt.datetime,
    data: bytes | None = None,
) -> NewInstance | None:
    """The instance as :func:`record_new` takes it, or None when its study or series is not known
    to this process yet (``record_instance`` records it, and caches the ids for the next)."""
    ids = known_ids(database, header.study_instance_uid, header.series_instance_uid)
    if ids is None:
        return None
    return NewInstance(header, stored, ids[0], ids[1], patient_key, calling_ae, reopen_study, now, data)


class Converters:
    """The columns' SQLAlchemy types' conversions on this dialect (UUIDs, UTC times, JSON)."""

    def __init__(self, dialect: Dialect) -> None:
        self.uuid = _processor(INSTANCES.c.id.type, dialect)
        self.when = _processor(STUDIES.c.last_received_at.type, dialect)
        self.json = _processor(EVENTS.c.detail.type, dialect)


def _processor(column_type: Any, dialect: Dialect) -> Callable[[Any], Any]:
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else (lambda value: value)


def record_new(cursor: sqlite3.Cursor, item: NewInstance, convert: Converters) -> uuid.UUID | None:
    """Write ``item``'s rows and ``study:instance:received`` event in the cursor's open write
    transaction and return the new instance's id; or write nothing and return None when it is not
    the common case of the module docstring.  Any other ``sqlite3.Error`` propagates (the caller
    rolls back)."""
    study_id, series_id = convert.uuid(item.study_id), convert.uuid(item.series_id)
    row = cursor.execute(_GUARD, (study_id,)).fetchone()
    if row is None:
        return None  # the study is gone: record_instance finds out what happened
    state, study_patient, files_were_removed = row
    if None not in (study_patient, item.patient_key) and study_patient != item.patient_key:
        return None  # another patient: record_instance holds the study
    if item.reopen_study and state == _COMPLETE:
        return None  # a re-draft: record_instance reopens (unless it is our own SR)
    stored = item.stored
    if not stored.in_place():
        return None  # removed by retention: record_instance says so to the sender
    header, now = item.header, convert.when(item.now)
    instance_id = uuid.uuid4()
    try:
        cursor.execute(
            _INSERT_INSTANCE,
            (convert.uuid(instance_id), series_id, study_id, header.sop_instance_uid, header.sop_class_uid,
             header.transfer_syntax_uid, header.instance_number, stored.relpath, stored.size_bytes,
             item.patient_key, now),
        )  # fmt: skip
    except sqlite3.IntegrityError:
        return None  # the series is gone (a cached id gone stale): record_instance starts afresh
    if cursor.rowcount != 1:
        return None  # a known SOP Instance UID: a re-send, a revision or a refusal
    modality = header.modality[:16] if header.modality else None
    cursor.execute(_COUNT_SERIES, (series_id,))
    count_study = _COUNT_STUDY_WITH_FILES_AGAIN if files_were_removed else _COUNT_STUDY_WITH_FILES
    cursor.execute(count_study, (now, now, modality, item.patient_key, study_id))
    detail = {
        "series_id": str(item.series_id),
        "sop_class_uid": header.sop_class_uid,
        "size_bytes": stored.size_bytes,
        "calling_ae": item.calling_ae,
        "instance_id": str(instance_id),
        "duplicate": False,
    }
    cursor.execute(_INSERT_EVENT, (study_id, _RECEIVED, convert.json(detail), convert.when(utcnow())))
    return instance_id


__all__ = ["Converters", "NewInstance", "new_instance", "record_new"]
