"""Record one received instance: idempotent upsert of its Study, Series and Instance rows.

Many associations may deliver instances of the same study at once, from several listener
processes.  Rows are created with ``INSERT ... ON CONFLICT DO NOTHING`` on the unique UIDs (both
PostgreSQL and SQLite support it), counters are bumped with ``SET n = n + 1`` in the database,
and state changes are compare-and-set, so no interleaving loses an instance or a count.  Should a
unique-key race or a deadlock still surface, the whole transaction is rolled back and redone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid
from typing import Any, cast

from sqlalchemy import Table, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from radassist.db.base import utcnow
from radassist.db.tables import Event, Instance, Job, Series, Study
from radassist.events import EventTag
from radassist.intake.header import InstanceHeader
from radassist.intake.sop_classes import is_report_sop_class
from radassist.states import StudyState
from radassist.store.instances import StoredFile

logger = logging.getLogger(__name__)

ATTEMPTS = 4
# PostgreSQL: serialization_failure, deadlock_detected.  SQLite: "database is locked" after busy_timeout.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


# Core tables rather than ORM entities: the statements below run once per received instance, and
# the ORM's bulk paths cost more Python time than the database does.
_STUDIES = cast(Table, Study.__table__)
_SERIES = cast(Table, Series.__table__)
_INSTANCES = cast(Table, Instance.__table__)
_EVENTS = cast(Table, Event.__table__)
_JOBS = cast(Table, Job.__table__)


class _IdCache:
    """Study and series ids by (database, UID): an association sends one study, so after its first
    instance the two upserts and look-ups are skipped.  Ids never change; a stale one (the row was
    deleted) fails the instance insert's foreign key, which clears the cache and retries."""

    def __init__(self, size: int = 4096) -> None:
        self._ids: dict[tuple[str, str, str], uuid.UUID] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> uuid.UUID | None:
        return self._ids.get(key)

    def put(self, key: tuple[str, str, str], value: uuid.UUID) -> None:
        with self._lock:
            if len(self._ids) >= self._size:
                self._ids.clear()
            self._ids[key] = value

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()


_IDS = _IdCache()


def accession_hash(accession_number: str | None) -> str | None:
    """The 16-hex handle stored instead of the accession number."""
    if not accession_number:
        return None
    return hashlib.sha256(accession_number.encode("utf-8")).hexdigest()[:16]


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
) -> bool:
    """Upsert the rows for one stored instance; True when the instance is new, False for a re-send.

    Call it at the start of a transaction: on a race it rolls the session back and starts over, so
    anything added earlier in the same transaction would be lost.  The caller commits.

    A re-sent instance moves ``Study.last_received_at`` (while the study is still receiving) and
    refreshes the file description of its row (the file itself was replaced), and changes no count.
    A new instance of a ``complete`` study reopens it (``study:reopened``): a re-draft follows;
    unless ``reopen_study`` is False (a non-image object) or the instance is one of our own SRs
    coming back from the PACS, which must never trigger a re-draft loop.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _record(
                session,
                header,
                stored,
                calling_ae=calling_ae,
                called_ae=called_ae,
                now=now,
                reopen_study=reopen_study,
            )
        except DBAPIError as exc:
            session.rollback()
            _IDS.clear()  # a cached id may be what failed (a study deleted meanwhile)
            if attempt == ATTEMPTS or not _retryable(exc):
                raise
            logger.info("retrying an instance record after a concurrent write (attempt %d)", attempt)
    raise AssertionError("unreachable")


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect: {dialect}")


def _event(session: Session, tag: EventTag, study_id: uuid.UUID, **detail: Any) -> None:
    session.execute(insert(_EVENTS).values(tag=str(tag), study_id=study_id, job_id=None, detail=detail, at=utcnow()))


def _record(
    session: Session,
    header: InstanceHeader,
    stored: StoredFile,
    *,
    calling_ae: str,
    called_ae: str,
    now: dt.datetime,
    reopen_study: bool,
) -> bool:
    database = str(session.get_bind().engine.url)
    study_key = (database, "study", header.study_instance_uid)
    study_id = _IDS.get(study_key)
    if study_id is None:
        study_id = _upsert_study(session, header, calling_ae=calling_ae, called_ae=called_ae, now=now)
        _IDS.put(study_key, study_id)
    series_key = (database, "series", header.series_instance_uid)
    series_id = _IDS.get(series_key)
    if series_id is None:
        series_id = _upsert_series(session, header, study_id)
        _IDS.put(series_key, series_id)

    instance_id: uuid.UUID | None = session.execute(
        _insert(session, _INSTANCES)
        .values(
            id=uuid.uuid4(),
            series_id=series_id,
            study_id=study_id,
            sop_instance_uid=header.sop_instance_uid,
            sop_class_uid=header.sop_class_uid,
            transfer_syntax_uid=header.transfer_syntax_uid,
            instance_number=header.instance_number,
            path=stored.relpath,
            size_bytes=stored.size_bytes,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=[_INSTANCES.c.sop_instance_uid])
        .returning(_INSTANCES.c.id)
    ).scalar_one_or_none()
    new = instance_id is not None

    studies = _STUDIES.c
    later = case((studies.last_received_at < now, now), else_=studies.last_received_at)
    reopened = False
    if new and reopen_study and is_report_sop_class(header.sop_class_uid):
        reopen_study = (
            session.scalar(select(_JOBS.c.id).where(_JOBS.c.sr_sop_instance_uid == header.sop_instance_uid).limit(1))
            is None
        )
    if new:
        # Reopen first: from here on this transaction holds the study row, so a sweeper's
        # compare-and-set waits for us (PostgreSQL) or is serialised behind us (SQLite).
        reopened = reopen_study and (
            session.execute(
                update(_STUDIES)
                .where(studies.id == study_id, studies.state == StudyState.COMPLETE)
                .values(state=StudyState.RECEIVING, completed_at=None)
                .returning(studies.id)
            ).scalar_one_or_none()
            is not None
        )
        session.execute(
            update(_SERIES)
            .where(_SERIES.c.id == series_id)
            .values(instance_count=_SERIES.c.instance_count + 1)
        )
        session.execute(
            update(_STUDIES)
            .where(studies.id == study_id)
            .values(
                instance_count=studies.instance_count + 1,
                last_received_at=later,
                modality=func.coalesce(studies.modality, _clip(header.modality, 16)),
            )
        )
    else:
        instance_id = session.execute(
            update(_INSTANCES)
            .where(_INSTANCES.c.sop_instance_uid == header.sop_instance_uid)
            .values(
                path=stored.relpath,
                size_bytes=stored.size_bytes,
                transfer_syntax_uid=header.transfer_syntax_uid,
            )
            .returning(_INSTANCES.c.id)
        ).scalar_one()
        session.execute(
            update(_STUDIES)
            .where(studies.id == study_id, studies.state == StudyState.RECEIVING)
            .values(last_received_at=later)
        )

    if reopened:
        _event(session, EventTag.STUDY_REOPENED, study_id)
    _event(
        session,
        EventTag.INSTANCE_RECEIVED,
        study_id,
        series_id=str(series_id),
        instance_id=str(instance_id),
        sop_class_uid=header.sop_class_uid,
        size_bytes=stored.size_bytes,
        calling_ae=calling_ae,
        duplicate=not new,
    )
    return new


def _upsert_study(
    session: Session, header: InstanceHeader, *, calling_ae: str, called_ae: str, now: dt.datetime
) -> uuid.UUID:
    session.execute(
        _insert(session, _STUDIES)
        .values(
            id=uuid.uuid4(),
            study_instance_uid=header.study_instance_uid,
            accession_number_hash=accession_hash(header.accession_number),
            modality=_clip(header.modality, 16),
            study_description=_clip(header.study_description, 64),
            patient_age=header.patient_age,
            patient_sex=header.patient_sex,
            calling_ae_title=_clip(calling_ae, 16),
            called_ae_title=_clip(called_ae, 16),
            state=StudyState.RECEIVING,
            instance_count=0,
            first_received_at=now,
            last_received_at=now,
        )
        .on_conflict_do_nothing(index_elements=[_STUDIES.c.study_instance_uid])
    )
    study_id = session.scalar(select(_STUDIES.c.id).where(_STUDIES.c.study_instance_uid == header.study_instance_uid))
    if study_id is None:  # pragma: no cover - only if the row vanished between the two statements
        raise IntegrityError("study row missing after upsert", None, Exception("study vanished"))
    return cast(uuid.UUID, study_id)


def _upsert_series(session: Session, header: InstanceHeader, study_id: uuid.UUID) -> uuid.UUID:
    session.execute(
        _insert(session, _SERIES)
        .values(
            id=uuid.uuid4(),
            study_id=study_id,
            series_instance_uid=header.series_instance_uid,
            modality=_clip(header.modality, 16),
            series_number=header.series_number,
            series_description=_clip(header.series_description, 64),
            instance_count=0,
        )
        .on_conflict_do_nothing(index_elements=[_SERIES.c.series_instance_uid])
    )
    series_id = session.scalar(
        select(_SERIES.c.id).where(_SERIES.c.series_instance_uid == header.series_instance_uid)
    )
    if series_id is None:  # pragma: no cover
        raise IntegrityError("series row missing after upsert", None, Exception("series vanished"))
    return cast(uuid.UUID, series_id)
