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
import uuid
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from radassist.db.tables import Instance, Series, Study
from radassist.events import EventTag, record_event
from radassist.intake.header import InstanceHeader
from radassist.states import StudyState
from radassist.store.instances import StoredFile

logger = logging.getLogger(__name__)

ATTEMPTS = 4
# PostgreSQL: serialization_failure, deadlock_detected.  SQLite: "database is locked" after busy_timeout.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


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
) -> bool:
    """Upsert the rows for one stored instance; True when the instance is new, False for a re-send.

    Call it at the start of a transaction: on a race it rolls the session back and starts over, so
    anything added earlier in the same transaction would be lost.  The caller commits.

    A re-sent instance moves ``Study.last_received_at`` (while the study is still receiving) and
    refreshes the file description of its row (the file itself was replaced), and changes no count.
    A new instance of a ``complete`` study reopens it (``study:reopened``): a re-draft follows.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _record(session, header, stored, calling_ae=calling_ae, called_ae=called_ae, now=now)
        except DBAPIError as exc:
            session.rollback()
            if attempt == ATTEMPTS or not _retryable(exc):
                raise
            logger.info("retrying an instance record after a concurrent write (attempt %d)", attempt)
    raise AssertionError("unreachable")


def _insert(session: Session, entity: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(entity)
    if dialect == "sqlite":
        return sqlite.insert(entity)
    raise NotImplementedError(f"unsupported database dialect: {dialect}")


def _record(
    session: Session,
    header: InstanceHeader,
    stored: StoredFile,
    *,
    calling_ae: str,
    called_ae: str,
    now: dt.datetime,
) -> bool:
    study_id = _upsert_study(session, header, calling_ae=calling_ae, called_ae=called_ae, now=now)
    series_id = _upsert_series(session, header, study_id)

    instance_id: uuid.UUID | None = session.execute(
        _insert(session, Instance)
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
        .on_conflict_do_nothing(index_elements=[Instance.sop_instance_uid])
        .returning(Instance.id)
    ).scalar_one_or_none()
    new = instance_id is not None

    later = case((Study.last_received_at < now, now), else_=Study.last_received_at)
    reopened = False
    if new:
        # Reopen first: from here on this transaction holds the study row, so a sweeper's
        # compare-and-set waits for us (PostgreSQL) or is serialised behind us (SQLite).
        reopened = (
            session.execute(
                update(Study)
                .where(Study.id == study_id, Study.state == StudyState.COMPLETE)
                .values(state=StudyState.RECEIVING, completed_at=None)
                .returning(Study.id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            is not None
        )
        session.execute(
            update(Series)
            .where(Series.id == series_id)
            .values(instance_count=Series.instance_count + 1)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Study)
            .where(Study.id == study_id)
            .values(
                instance_count=Study.instance_count + 1,
                last_received_at=later,
                modality=func.coalesce(Study.modality, _clip(header.modality, 16)),
            )
            .execution_options(synchronize_session=False)
        )
    else:
        instance_id = session.execute(
            update(Instance)
            .where(Instance.sop_instance_uid == header.sop_instance_uid)
            .values(
                path=stored.relpath,
                size_bytes=stored.size_bytes,
                transfer_syntax_uid=header.transfer_syntax_uid,
            )
            .returning(Instance.id)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        session.execute(
            update(Study)
            .where(Study.id == study_id, Study.state == StudyState.RECEIVING)
            .values(last_received_at=later)
            .execution_options(synchronize_session=False)
        )

    if reopened:
        record_event(session, EventTag.STUDY_REOPENED, study_id=study_id)
    record_event(
        session,
        EventTag.INSTANCE_RECEIVED,
        study_id=study_id,
        series_id=str(series_id),
        instance_id=str(instance_id),
        sop_class_uid=header.sop_class_uid,
        size_bytes=stored.size_bytes,
        calling_ae=calling_ae,
        duplicate=not new,
    )
    session.flush()
    return new


def _upsert_study(
    session: Session, header: InstanceHeader, *, calling_ae: str, called_ae: str, now: dt.datetime
) -> uuid.UUID:
    session.execute(
        _insert(session, Study)
        .values(
            id=uuid.uuid4(),
            study_instance_uid=header.study_instance_uid,
            accession_number_hash=accession_hash(header.accession_number),
            modality=_clip(header.modality, 16),
            study_description=_clip(header.study_description, 64),
            calling_ae_title=_clip(calling_ae, 16),
            called_ae_title=_clip(called_ae, 16),
            state=StudyState.RECEIVING,
            instance_count=0,
            first_received_at=now,
            last_received_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Study.study_instance_uid])
    )
    study_id = session.scalar(select(Study.id).where(Study.study_instance_uid == header.study_instance_uid))
    if study_id is None:  # pragma: no cover - only if the row vanished between the two statements
        raise IntegrityError("study row missing after upsert", None, Exception("study vanished"))
    return study_id


def _upsert_series(session: Session, header: InstanceHeader, study_id: uuid.UUID) -> uuid.UUID:
    session.execute(
        _insert(session, Series)
        .values(
            id=uuid.uuid4(),
            study_id=study_id,
            series_instance_uid=header.series_instance_uid,
            modality=_clip(header.modality, 16),
            series_number=header.series_number,
            series_description=_clip(header.series_description, 64),
            instance_count=0,
        )
        .on_conflict_do_nothing(index_elements=[Series.series_instance_uid])
    )
    series_id = session.scalar(
        select(Series.id).where(Series.series_instance_uid == header.series_instance_uid)
    )
    if series_id is None:  # pragma: no cover
        raise IntegrityError("series row missing after upsert", None, Exception("series vanished"))
    return series_id
