"""Record one received instance: idempotent upsert of its Study, Series and Instance rows.

Many associations may deliver instances of the same study at once, from several listener
processes.  Rows are created with ``INSERT ... ON CONFLICT DO NOTHING`` on the unique UIDs (both
PostgreSQL and SQLite support it), counters are bumped with ``SET n = n + 1`` in the database,
and state changes are compare-and-set, so no interleaving loses an instance or a count.  Should a
unique-key race or a deadlock still surface, the whole transaction is rolled back and redone.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from radassist.db.base import utcnow
from radassist.db.tables import Event, Instance, Job, Series, Study
from radassist.events import EventTag
from radassist.identifiers import accession_hash
from radassist.intake.header import InstanceHeader
from radassist.intake.record_postgresql import record_in_one_statement
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
    return _dialect_insert(session.get_bind().dialect.name, table)


def _dialect_insert(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect: {dialect}")


def _param(name: str, column: Any) -> Any:
    """A named parameter typed like ``column`` (``p_`` names: column names are reserved in SET)."""
    return bindparam(f"p_{name}", type_=column.type)


@dataclass(frozen=True)
class _Statements:
    """The statements run for every received instance, built once per dialect.

    Building a Core statement and its cache key costs more Python time than SQLite takes to run it;
    with these built once, each instance only binds its values.
    """

    insert_instance: Any
    reopen_study: Any
    count_series: Any
    count_study: Any
    refresh_instance: Any
    touch_study: Any
    insert_event: Any
    our_sr: Any


@functools.cache
def _statements(dialect: str) -> _Statements:
    i, se, st, ev = _INSTANCES.c, _SERIES.c, _STUDIES.c, _EVENTS.c
    now = _param("now", st.last_received_at)
    later = case((st.last_received_at < now, now), else_=st.last_received_at)
    return _Statements(
        insert_instance=_dialect_insert(dialect, _INSTANCES)
        .values(
            id=_param("id", i.id),
            series_id=_param("series_id", i.series_id),
            study_id=_param("study_id", i.study_id),
            sop_instance_uid=_param("sop_instance_uid", i.sop_instance_uid),
            sop_class_uid=_param("sop_class_uid", i.sop_class_uid),
            transfer_syntax_uid=_param("transfer_syntax_uid", i.transfer_syntax_uid),
            instance_number=_param("instance_number", i.instance_number),
            path=_param("path", i.path),
            size_bytes=_param("size_bytes", i.size_bytes),
            received_at=_param("now", i.received_at),
        )
        .on_conflict_do_nothing(index_elements=[i.sop_instance_uid])
        .returning(i.id),
        # Reopen first: from here on this transaction holds the study row, so a sweeper's
        # compare-and-set waits for us (PostgreSQL) or is serialised behind us (SQLite).
        reopen_study=update(_STUDIES)
        .where(st.id == _param("study_id", st.id), st.state == StudyState.COMPLETE)
        .values(state=StudyState.RECEIVING, completed_at=None)
        .returning(st.id),
        count_series=update(_SERIES)
        .where(se.id == _param("series_id", se.id))
        .values(instance_count=se.instance_count + 1),
        count_study=update(_STUDIES)
        .where(st.id == _param("study_id", st.id))
        .values(
            instance_count=st.instance_count + 1,
            last_received_at=later,
            modality=func.coalesce(st.modality, _param("modality", st.modality)),
        ),
        refresh_instance=update(_INSTANCES)
        .where(i.sop_instance_uid == _param("sop_instance_uid", i.sop_instance_uid))
        .values(
            path=_param("path", i.path),
            size_bytes=_param("size_bytes", i.size_bytes),
            transfer_syntax_uid=_param("transfer_syntax_uid", i.transfer_syntax_uid),
        )
        .returning(i.id),
        touch_study=update(_STUDIES)
        .where(st.id == _param("study_id", st.id), st.state == StudyState.RECEIVING)
        .values(last_received_at=later),
        insert_event=insert(_EVENTS).values(
            tag=_param("tag", ev.tag),
            study_id=_param("study_id", ev.study_id),
            job_id=None,
            detail=_param("detail", ev.detail),
            at=_param("at", ev.at),
        ),
        our_sr=select(_JOBS.c.id).where(_JOBS.c.sr_sop_instance_uid == _param("sop_instance_uid", _JOBS.c.sr_sop_instance_uid)).limit(1),
    )


def _event(session: Session, tag: EventTag, study_id: uuid.UUID, **detail: Any) -> None:
    statements = _statements(session.get_bind().dialect.name)
    session.connection().execute(
        statements.insert_event, {"p_tag": str(tag), "p_study_id": study_id, "p_detail": detail, "p_at": utcnow()}
    )


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
    bind = session.get_bind()
    database = str(bind.engine.url)
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

    instance_row = {
        "p_id": uuid.uuid4(),
        "p_series_id": series_id,
        "p_study_id": study_id,
        "p_sop_instance_uid": header.sop_instance_uid,
        "p_sop_class_uid": header.sop_class_uid,
        "p_transfer_syntax_uid": header.transfer_syntax_uid,
        "p_instance_number": header.instance_number,
        "p_path": stored.relpath,
        "p_size_bytes": stored.size_bytes,
        "p_now": now,
    }
    # The ``instance:received`` event's detail; the instance id and ``duplicate`` are added to it.
    received = {
        "series_id": str(series_id),
        "sop_class_uid": header.sop_class_uid,
        "size_bytes": stored.size_bytes,
        "calling_ae": calling_ae,
    }
    if bind.dialect.name == "postgresql":
        return record_in_one_statement(
            session.connection(),
            instance_row,
            received_detail=received,
            modality=_clip(header.modality, 16),
            reopen_study=reopen_study,
            is_report=is_report_sop_class(header.sop_class_uid),
        )

    statements = _statements(bind.dialect.name)
    connection = session.connection()
    instance_id: uuid.UUID | None = connection.execute(statements.insert_instance, instance_row).scalar_one_or_none()
    new = instance_id is not None

    reopened = False
    if new and reopen_study and is_report_sop_class(header.sop_class_uid):
        reopen_study = (
            connection.execute(statements.our_sr, {"p_sop_instance_uid": header.sop_instance_uid}).scalar() is None
        )
    if new:
        reopened = reopen_study and (
            connection.execute(statements.reopen_study, {"p_study_id": study_id}).scalar_one_or_none() is not None
        )
        connection.execute(statements.count_series, {"p_series_id": series_id})
        connection.execute(
            statements.count_study,
            {"p_study_id": study_id, "p_now": now, "p_modality": _clip(header.modality, 16)},
        )
    else:
        instance_id = connection.execute(
            statements.refresh_instance,
            {
                "p_sop_instance_uid": header.sop_instance_uid,
                "p_path": stored.relpath,
                "p_size_bytes": stored.size_bytes,
                "p_transfer_syntax_uid": header.transfer_syntax_uid,
            },
        ).scalar_one()
        connection.execute(statements.touch_study, {"p_study_id": study_id, "p_now": now})

    if reopened:
        _event(session, EventTag.STUDY_REOPENED, study_id)
    _event(session, EventTag.INSTANCE_RECEIVED, study_id, **received, instance_id=str(instance_id), duplicate=not new)
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
