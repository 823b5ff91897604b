"""The statements :mod:`radassist.intake.record` runs one by one, built once per dialect.

Core tables rather than ORM entities: these run once per received instance, and building a Core
statement and its cache key costs more Python time than SQLite takes to run it; with these built
once, each instance only binds its values.  SQLite runs them for every instance; PostgreSQL runs a
new instance as one statement (:mod:`radassist.intake.record_postgresql`) and only the rarer paths
(a re-send, a revision) here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from radassist.db.tables import Event, Instance, Job, Series, Study
from radassist.states import StudyState

STUDIES = cast(Table, Study.__table__)
SERIES = cast(Table, Series.__table__)
INSTANCES = cast(Table, Instance.__table__)
EVENTS = cast(Table, Event.__table__)
JOBS = cast(Table, Job.__table__)


def dialect_insert(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect: {dialect}")


def param(name: str, column: Any) -> Any:
    """A named parameter typed like ``column`` (``p_`` names: column names are reserved in SET)."""
    return bindparam(f"p_{name}", type_=column.type)


@dataclass(frozen=True)
class Statements:
    insert_instance: Any
    study_identity: Any
    reopen_study: Any
    hold_study: Any
    count_series: Any
    count_study: Any
    existing_instance: Any
    revise_instance: Any
    has_files_again: Any
    touch_study: Any
    insert_event: Any
    our_sr: Any


@functools.cache
def statements(dialect: str) -> Statements:
    i, se, st, ev = INSTANCES.c, SERIES.c, STUDIES.c, EVENTS.c
    now = param("now", st.last_received_at)
    later = case((st.last_received_at < now, now), else_=st.last_received_at)
    study_id = param("study_id", st.id)
    return Statements(
        insert_instance=dialect_insert(dialect, INSTANCES)
        .values(
            id=param("id", i.id),
            series_id=param("series_id", i.series_id),
            study_id=param("study_id", i.study_id),
            sop_instance_uid=param("sop_instance_uid", i.sop_instance_uid),
            sop_class_uid=param("sop_class_uid", i.sop_class_uid),
            transfer_syntax_uid=param("transfer_syntax_uid", i.transfer_syntax_uid),
            instance_number=param("instance_number", i.instance_number),
            path=param("path", i.path),
            size_bytes=param("size_bytes", i.size_bytes),
            patient_key=param("patient_key", i.patient_key),
            received_at=param("now", i.received_at),
        )
        .on_conflict_do_nothing(index_elements=[i.sop_instance_uid])
        .returning(i.id),
        study_identity=select(st.state, st.patient_key).where(st.id == study_id),
        # Reopen first: from here on this transaction holds the study row, so a sweeper's
        # compare-and-set waits for us (PostgreSQL) or is serialised behind us (SQLite).
        reopen_study=update(STUDIES)
        .where(st.id == study_id, st.state == StudyState.COMPLETE)
        .values(state=StudyState.RECEIVING, completed_at=None)
        .returning(st.id),
        hold_study=update(STUDIES)
        .where(st.id == study_id, st.state != StudyState.IDENTITY_CONFLICT)
        .values(state=StudyState.IDENTITY_CONFLICT)
        .returning(st.id),
        count_series=update(SERIES)
        .where(se.id == param("series_id", se.id))
        .values(instance_count=se.instance_count + 1),
        count_study=update(STUDIES)
        .where(st.id == study_id)
        .values(
            instance_count=st.instance_count + 1,
            last_received_at=later,
            modality=func.coalesce(st.modality, param("modality", st.modality)),
            patient_key=func.coalesce(st.patient_key, param("patient_key", st.patient_key)),
            files_removed_at=None,  # it has files again: retention's to judge anew
        ),
        existing_instance=select(
            i.id, i.study_id, i.series_id, i.sop_class_uid, i.patient_key, i.path, st.study_instance_uid
        )
        .join_from(INSTANCES, STUDIES, st.id == i.study_id)
        .where(i.sop_instance_uid == param("sop_instance_uid", i.sop_instance_uid))
        .with_for_update(of=INSTANCES),
        revise_instance=update(INSTANCES)
        .where(i.id == param("id", i.id))
        .values(
            path=param("path", i.path),
            size_bytes=param("size_bytes", i.size_bytes),
            transfer_syntax_uid=param("transfer_syntax_uid", i.transfer_syntax_uid),
            patient_key=func.coalesce(i.patient_key, param("patient_key", i.patient_key)),
        ),
        has_files_again=update(STUDIES)
        .where(st.id == study_id, st.files_removed_at.is_not(None))
        .values(files_removed_at=None),
        touch_study=update(STUDIES)
        .where(st.id == study_id, st.state == StudyState.RECEIVING)
        .values(last_received_at=later),
        insert_event=insert(EVENTS).values(
            tag=param("tag", ev.tag),
            study_id=param("study_id", ev.study_id),
            job_id=None,
            detail=param("detail", ev.detail),
            at=param("at", ev.at),
        ),
        our_sr=select(JOBS.c.id).where(JOBS.c.sr_sop_instance_uid == param("sop_instance_uid", JOBS.c.sr_sop_instance_uid)).limit(1),
    )
