"""Record one received instance: its Study, Series and Instance rows, under the identity rules.

What an instance may do to the rows (:mod:`radassist.intake.identity` says why):

* **new** SOP Instance UID: its rows are added and counted.  If it names another patient than the
  study's first instance (an instance naming no patient at all names no other), the study is held in ``identity_conflict`` (nothing is drafted or sent
  until an admin resolves it); otherwise a ``complete`` study is reopened for a re-draft (unless
  the instance is a non-image object or our own SR coming back from the PACS).
* **the same** UID again, with the same study, series, SOP class and patient:

  - the same bytes (the instance store found them already stored): an idempotent Success; only
    ``Study.last_received_at`` moves while the study is still receiving;
  - other bytes: a **revision**.  Both files are kept (the store never overwrites), the row points to
    the newest, and a ``complete`` study is reopened so the draft is made again from what the
    sender now says the instance is (``study:instance:revised``).  This is what a PACS administrator
    expects of a corrected object re-sent under its UID: the newest copy counts, nothing is lost.
* **the same** UID with another study, series, SOP class or patient, or a Series Instance UID
  that belongs to another study: refused with
  ``RejectedInput(code="intake.identity_conflict")``; the stored instance, its row and its study
  stay untouched, and the study holding the UID gets a ``study:instance:identity_refused`` event.
  The refusal's event is committed here (everything else of this instance is rolled back first);
  the caller removes the new file (:attr:`StoredFile.replaced` is False for it).

Many associations may deliver instances of the same study at once, from several listener
processes.  Rows are created with ``INSERT ... ON CONFLICT DO NOTHING`` on the unique UIDs, a known
instance's row is read only after that insert (which on SQLite holds the write lock, and on
PostgreSQL waits for a concurrent insert of the same UID), counters are bumped with ``SET n = n + 1``
in the database, and state changes are compare-and-set, so no interleaving loses an instance or a
count, or lets two senders of one colliding UID both succeed.  Should a unique-key race or a
deadlock still surface, the whole transaction is rolled back and redone.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from radassist.db.base import utcnow
from radassist.errors import RejectedInput, TransientFailure
from radassist.events import EventTag
from radassist.identifiers import accession_hash, study_handle
from radassist.intake import known_ids
from radassist.intake.header import InstanceHeader
from radassist.intake.identity import CONFLICT_CODE, Mismatch, hold_study, refuse_reused_uid
from radassist.intake.patient import UNKNOWN_PATIENT, installation_key, patient_key
from radassist.intake.record_postgresql import record_in_one_statement
from radassist.intake.record_steps import SERIES, STUDIES, dialect_insert, statements
from radassist.intake.sop_classes import is_report_sop_class
from radassist.states import StudyState
from radassist.store.instances import StoredFile

logger = logging.getLogger(__name__)

ATTEMPTS = 4
# PostgreSQL: serialization_failure, deadlock_detected.  SQLite: "database is locked" after busy_timeout.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


@dataclass(frozen=True)
class _Arrival:
    """One instance being recorded: what came, where it landed, and who it names (as a key)."""

    header: InstanceHeader
    stored: StoredFile
    patient_key: str | None
    calling_ae: str
    called_ae: str
    now: dt.datetime
    reopen_study: bool


class _ReusedUid(Exception):
    """The instance's UID is stored with something else: refuse it (after rolling back)."""

    def __init__(self, study_id: uuid.UUID, study_uid: str, mismatch: Mismatch) -> None:
        super().__init__(str(mismatch))
        self.study_id, self.study_uid, self.mismatch = study_id, study_uid, mismatch


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value else None


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)


def record_instance(
    session: Session,
    header: InstanceHeader,
    stored: StoredFile,
    *,
    calling_ae: str,
    called_ae: str,
    now: dt.datetime,
    reopen_study: bool = True,
    identity_key: bytes | None = None,
) -> bool:
    """Record one stored instance by the rules above; True when the instance is new, False for a
    re-send or a revision.  Raises ``RejectedInput`` (``intake.identity_conflict``) for a reused UID.

    ``identity_key`` is the key of :func:`radassist.intake.patient.patient_key`; by default the
    instance store's own (``stored.root``).  Call it at the start of a transaction: on a race it rolls
    the session back and starts over, so anything added earlier in the same transaction would be
    lost.  The caller commits.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    key = instance_patient_key(header, stored, identity_key)
    arrival = _Arrival(header, stored, key, calling_ae, called_ae, now, reopen_study)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _record(session, arrival)
        except _ReusedUid as reused:
            session.rollback()  # with it, the ids this transaction staged (known_ids)
            raise _refusal(session, reused, calling_ae) from None
        except DBAPIError as exc:
            session.rollback()
            known_ids.forget_all()  # a cached id may be what failed (a study deleted meanwhile)
            if attempt == ATTEMPTS or not _retryable(exc):
                raise
            logger.info("retrying an instance record after a concurrent write (attempt %d)", attempt)
    raise AssertionError("unreachable")


def instance_patient_key(header: InstanceHeader, stored: StoredFile, identity_key: bytes | None = None) -> str | None:
    """The patient key stored for the instance (:func:`radassist.intake.patient.patient_key`), with
    ``identity_key`` or else the instance store's own; None for an instance that names no patient at
    all (it cannot name another one)."""
    if identity_key is None:
        if stored.root is None:
            raise ValueError('Argument "identity_key" is required for a stored file without its store root.')
        identity_key = installation_key(stored.root)
    if header.patient_digest == UNKNOWN_PATIENT:
        return None
    return patient_key(header.patient_digest, identity_key)


def _refusal(session: Session, reused: _ReusedUid, calling_ae: str) -> RejectedInput:
    try:
        return refuse_reused_uid(session, reused.study_id, reused.study_uid, reused.mismatch, calling_ae)
    except DBAPIError as exc:
        session.rollback()
        logger.warning("could not note a refused instance on its study's timeline (%s)", type(exc).__name__)
        return RejectedInput("the SOP Instance UID is already stored with other attributes", code=CONFLICT_CODE)


def _event(session: Session, tag: EventTag, study_id: uuid.UUID, **detail: Any) -> None:
    session.connection().execute(
        statements(session.get_bind().dialect.name).insert_event,
        {"p_tag": str(tag), "p_study_id": study_id, "p_detail": detail, "p_at": utcnow()},
    )


def _check_file(stored: StoredFile) -> None:
    """The file must still exist once the study's rows are ours: retention removes a study's files
    while it holds those rows, so a file gone now went with a study removed under us."""
    if stored.root is not None and not stored.in_place():
        raise TransientFailure("the stored file was removed by retention meanwhile", code="storage.file_removed")


def _record(session: Session, arrival: _Arrival) -> bool:
    header = arrival.header
    bind = session.get_bind()
    database = str(bind.engine.url)
    study_key = (database, "study", header.study_instance_uid)
    study_id = known_ids.staged(session, study_key)
    if study_id is None:
        study_id = _upsert_study(session, arrival)
        known_ids.stage(session, study_key, study_id)
    series_key = (database, f"series of {study_id}", header.series_instance_uid)
    series_id = known_ids.staged(session, series_key)
    if series_id is None:
        series_id = _upsert_series(session, header, study_id)
        known_ids.stage(session, series_key, series_id)

    instance_row = {
        "p_id": uuid.uuid4(),
        "p_series_id": series_id,
        "p_study_id": study_id,
        "p_sop_instance_uid": header.sop_instance_uid,
        "p_sop_class_uid": header.sop_class_uid,
        "p_transfer_syntax_uid": header.transfer_syntax_uid,
        "p_instance_number": header.instance_number,
        "p_path": arrival.stored.relpath,
        "p_size_bytes": arrival.stored.size_bytes,
        "p_patient_key": arrival.patient_key,
        "p_now": arrival.now,
    }
    # The ``instance:received`` event's detail; the instance id and ``duplicate`` are added to it.
    received = {
        "series_id": str(series_id),
        "sop_class_uid": header.sop_class_uid,
        "size_bytes": arrival.stored.size_bytes,
        "calling_ae": arrival.calling_ae,
    }
    if bind.dialect.name == "postgresql":
        outcome = record_in_one_statement(
            session.connection(),
            instance_row,
            received_detail=received,
            modality=_clip(header.modality, 16),
            reopen_study=arrival.reopen_study,
            is_report=is_report_sop_class(header.sop_class_uid),
        )
        _check_file(arrival.stored)
        if outcome.inserted:
            if outcome.held:
                hold_study(session, study_id, header.study_instance_uid, calling_ae=arrival.calling_ae)
            return True
        return _resend(session, arrival, study_id, series_id, received)

    connection = session.connection()
    steps = statements(bind.dialect.name)
    instance_id: uuid.UUID | None = connection.execute(steps.insert_instance, instance_row).scalar_one_or_none()
    _check_file(arrival.stored)
    if instance_id is None:
        return _resend(session, arrival, study_id, series_id, received)

    state, study_patient = connection.execute(steps.study_identity, {"p_study_id": study_id}).one()
    mismatch = None not in (study_patient, arrival.patient_key) and study_patient != arrival.patient_key
    reopened = not mismatch and _reopen(session, arrival, study_id)
    connection.execute(steps.count_series, {"p_series_id": series_id})
    connection.execute(
        steps.count_study,
        {"p_study_id": study_id, "p_now": arrival.now, "p_modality": _clip(header.modality, 16),
         "p_patient_key": arrival.patient_key},
    )
    held = mismatch and connection.execute(steps.hold_study, {"p_study_id": study_id}).scalar_one_or_none() is not None
    if reopened:
        _event(session, EventTag.STUDY_REOPENED, study_id)
    _event(session, EventTag.INSTANCE_RECEIVED, study_id, **received, instance_id=str(instance_id), duplicate=False)
    if held:
        hold_study(session, study_id, header.study_instance_uid, calling_ae=arrival.calling_ae)
    return True


def _reopen(session: Session, arrival: _Arrival, study_id: uuid.UUID) -> bool:
    """Reopen a ``complete`` study for a re-draft, unless the instance must not start one."""
    if not arrival.reopen_study:
        return False
    connection = session.connection()
    steps = statements(session.get_bind().dialect.name)
    uid = arrival.header.sop_instance_uid
    if is_report_sop_class(arrival.header.sop_class_uid) and (
        connection.execute(steps.our_sr, {"p_sop_instance_uid": uid}).scalar() is not None
    ):
        return False  # our own SR, routed back by the PACS: never a re-draft loop
    return connection.execute(steps.reopen_study, {"p_study_id": study_id}).scalar_one_or_none() is not None


def _mismatch(row: Any, arrival: _Arrival, study_id: uuid.UUID, series_id: uuid.UUID) -> Mismatch | None:
    if row.study_id != study_id:
        return Mismatch.STUDY
    if row.series_id != series_id:
        return Mismatch.SERIES
    if row.sop_class_uid != arrival.header.sop_class_uid:
        return Mismatch.SOP_CLASS
    if None not in (row.patient_key, arrival.patient_key) and row.patient_key != arrival.patient_key:
        return Mismatch.PATIENT
    return None


def _resend(
    session: Session, arrival: _Arrival, study_id: uuid.UUID, series_id: uuid.UUID, received: dict[str, Any]
) -> bool:
    """A SOP Instance UID already stored: the same instance again, a revision, or a refusal."""
    connection = session.connection()
    steps = statements(session.get_bind().dialect.name)
    row = connection.execute(
        steps.existing_instance, {"p_sop_instance_uid": arrival.header.sop_instance_uid}
    ).one_or_none()
    if row is None:  # removed between our insert and this read (retention): record it anew
        raise IntegrityError("a re-sent instance's row vanished", None, Exception("row vanished"))
    mismatch = _mismatch(row, arrival, study_id, series_id)
    if mismatch is not None:
        raise _ReusedUid(row.study_id, row.study_instance_uid, mismatch)
    touch = {"p_study_id": study_id, "p_now": arrival.now}
    if row.path == arrival.stored.relpath:
        connection.execute(steps.touch_study, touch)
        _event(session, EventTag.INSTANCE_RECEIVED, study_id, **received, instance_id=str(row.id), duplicate=True)
        return False
    connection.execute(
        steps.revise_instance,
        {"p_id": row.id, "p_path": arrival.stored.relpath, "p_size_bytes": arrival.stored.size_bytes,
         "p_transfer_syntax_uid": arrival.header.transfer_syntax_uid, "p_patient_key": arrival.patient_key},
    )
    reopened = _reopen(session, arrival, study_id)
    connection.execute(steps.touch_study, touch)
    connection.execute(steps.has_files_again, {"p_study_id": study_id})
    if reopened:
        _event(session, EventTag.STUDY_REOPENED, study_id)
    _event(session, EventTag.INSTANCE_REVISED, study_id, **received, instance_id=str(row.id))
    logger.info("an instance of study %s was sent again with other content: the newest copy counts",
                study_handle(arrival.header.study_instance_uid))
    return False


def _upsert_study(session: Session, arrival: _Arrival) -> uuid.UUID:
    header = arrival.header
    session.execute(
        dialect_insert(session.get_bind().dialect.name, STUDIES)
        .values(
            id=uuid.uuid4(),
            study_instance_uid=header.study_instance_uid,
            accession_number_hash=accession_hash(header.accession_number),
            modality=_clip(header.modality, 16),
            study_description=_clip(header.study_description, 64),
            patient_age=header.patient_age,
            patient_sex=header.patient_sex,
            patient_key=arrival.patient_key,
            calling_ae_title=_clip(arrival.calling_ae, 16),
            called_ae_title=_clip(arrival.called_ae, 16),
            state=StudyState.RECEIVING,
            instance_count=0,
            first_received_at=arrival.now,
            last_received_at=arrival.now,
        )
        .on_conflict_do_nothing(index_elements=[STUDIES.c.study_instance_uid])
    )
    study_id = session.scalar(select(STUDIES.c.id).where(STUDIES.c.study_instance_uid == header.study_instance_uid))
    if study_id is None:  # pragma: no cover - only if the row vanished between the two statements
        raise IntegrityError("study row missing after upsert", None, Exception("study vanished"))
    return cast(uuid.UUID, study_id)


def _upsert_series(session: Session, header: InstanceHeader, study_id: uuid.UUID) -> uuid.UUID:
    session.execute(
        dialect_insert(session.get_bind().dialect.name, SERIES)
        .values(
            id=uuid.uuid4(),
            study_id=study_id,
            series_instance_uid=header.series_instance_uid,
            modality=_clip(header.modality, 16),
            series_number=header.series_number,
            series_description=_clip(header.series_description, 64),
            instance_count=0,
        )
        .on_conflict_do_nothing(index_elements=[SERIES.c.series_instance_uid])
    )
    row = session.execute(
        select(SERIES.c.id, SERIES.c.study_id, STUDIES.c.study_instance_uid)
        .join_from(SERIES, STUDIES, STUDIES.c.id == SERIES.c.study_id)
        .where(SERIES.c.series_instance_uid == header.series_instance_uid)
    ).one_or_none()
    if row is None:  # pragma: no cover
        raise IntegrityError("series row missing after upsert", None, Exception("series vanished"))
    if row.study_id != study_id:
        raise _ReusedUid(row.study_id, row.study_instance_uid, Mismatch.SERIES_IN_OTHER_STUDY)
    return cast(uuid.UUID, row.id)
