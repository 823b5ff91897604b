"""Recording a new instance on PostgreSQL in one statement: one network round trip instead of five.

:mod:`radassist.intake.record` writes a new instance with up to five statements (insert the
instance, reopen or hold the study, count it in its series and its study, add the timeline
events).  On SQLite each is a function call; on PostgreSQL each is a round trip to the server, and
those round trips were most of what PostgreSQL added to a C-STORE.  Here the same writes are
data-modifying CTEs of one statement, with the same rules and the same results:

- the instance is inserted unless its SOP Instance UID is known; only a new instance changes
  anything else (a known UID is a re-send, a revision or a refusal: the caller decides with the
  rows in view, :func:`radassist.intake.record._resend`);
- the study row is locked first (``FOR UPDATE``) and its state before this statement returned, so a
  completion sweeper's compare-and-set waits for us exactly as before;
- an instance naming another patient than the study's (``patient_key``) holds the study in
  ``identity_conflict`` instead of reopening it; otherwise ``study:reopened`` is written only when
  this instance turned a ``complete`` study back to ``receiving``;
- the events are inserted in order (reopened, then received); the caller adds the hold's own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from radassist.db.tables import Event, Instance, Job, Series, Study
from radassist.events import EventTag
from radassist.states import StudyState

_STUDIES = cast(Table, Study.__table__)
_SERIES = cast(Table, Series.__table__)
_INSTANCES = cast(Table, Instance.__table__)
_EVENTS = cast(Table, Event.__table__)
_JOBS = cast(Table, Job.__table__)


def _param(name: str, column: Any) -> Any:
    """A named parameter typed like ``column`` (``p_`` names: column names are reserved in SET)."""
    return bindparam(f"p_{name}", type_=column.type)


def _inserted() -> Any:
    """The instance's row, unless its SOP Instance UID is known (then nothing, and no id)."""
    i = _INSTANCES.c
    return (
        postgresql.insert(_INSTANCES)
        .values(
            id=_param("id", i.id),
            series_id=_param("series_id", _SERIES.c.id),
            study_id=_param("study_id", _STUDIES.c.id),
            sop_instance_uid=_param("sop_instance_uid", i.sop_instance_uid),
            sop_class_uid=_param("sop_class_uid", i.sop_class_uid),
            transfer_syntax_uid=_param("transfer_syntax_uid", i.transfer_syntax_uid),
            instance_number=_param("instance_number", i.instance_number),
            path=_param("path", i.path),
            size_bytes=_param("size_bytes", i.size_bytes),
            patient_key=_param("patient_key", _STUDIES.c.patient_key),
            received_at=_param("now", _STUDIES.c.last_received_at),
        )
        .on_conflict_do_nothing(index_elements=[i.sop_instance_uid])
        .returning(i.id)
        .cte("inserted")
    )


def _study_update(is_new: Any) -> Any:
    """Count the new instance in its study, and hold or reopen the study as the rules say."""
    st = _STUDIES.c
    now, key = _param("now", st.last_received_at), _param("patient_key", st.patient_key)
    # Locked before it is updated, and read as it was: PostgreSQL 15's RETURNING has no OLD.
    before = select(st.id, st.state).where(st.id == _param("study_id", st.id)).with_for_update().cte("before")
    our_own_sr = exists(
        select(_JOBS.c.id).where(_JOBS.c.sr_sop_instance_uid == _param("sop_instance_uid", _INSTANCES.c.sop_instance_uid))
    )
    may_reopen = and_(
        bindparam("p_reopen", type_=Boolean()), or_(~bindparam("p_is_report", type_=Boolean()), ~our_own_sr)
    )
    other_patient = and_(key.is_not(None), st.patient_key.is_not(None), st.patient_key != key)
    holds = and_(other_patient, st.state != StudyState.IDENTITY_CONFLICT)
    reopens = and_(~other_patient, may_reopen, st.state == StudyState.COMPLETE)
    return (
        update(_STUDIES)
        .where(st.id == before.c.id, is_new)
        .values(
            state=case((holds, StudyState.IDENTITY_CONFLICT), (reopens, StudyState.RECEIVING), else_=st.state),
            completed_at=case((reopens, None), else_=st.completed_at),
            instance_count=st.instance_count + 1,
            last_received_at=case((st.last_received_at < now, now), else_=st.last_received_at),
            modality=func.coalesce(st.modality, _param("modality", st.modality)),
            patient_key=func.coalesce(st.patient_key, key),
            files_removed_at=None,  # it has files again: retention's to judge anew
        )
        .returning(before.c.state.label("state_before"), st.state.label("state_after"))
        .cte("study")
    )


def _events(inserted: Any, study: Any, is_new: Any) -> Any:
    """The timeline rows, in order: ``study:reopened`` when it was, then ``study:instance:received``."""
    ev = _EVENTS.c
    received_detail = sql_cast(_param("detail", ev.detail), JSONB).op("||")(
        func.jsonb_build_object(
            "instance_id", sql_cast(select(inserted.c.id).scalar_subquery(), String), "duplicate", False
        )
    )
    reopened = and_(study.c.state_before == StudyState.COMPLETE, study.c.state_after == StudyState.RECEIVING)
    rows = union_all(
        select(literal(1).label("n"), literal(str(EventTag.STUDY_REOPENED)).label("tag"),
               sql_cast(literal("{}"), JSONB).label("detail")).where(reopened),
        select(literal(2), literal(str(EventTag.INSTANCE_RECEIVED)), received_detail).where(is_new),
    ).subquery("rows")
    return (
        insert(_EVENTS)
        .from_select(
            ["tag", "study_id", "detail", "at"],
            select(rows.c.tag, _param("study_id", ev.study_id), rows.c.detail,
                   _param("now", _STUDIES.c.last_received_at)).order_by(rows.c.n),
        )
        .returning(ev.id)
        .cte("events")
    )


@functools.cache
def _statement() -> Any:
    """The one statement, built once: each instance only binds its values."""
    se = _SERIES.c
    inserted = _inserted()
    is_new = exists(select(inserted.c.id))
    study = _study_update(is_new)
    series = (
        update(_SERIES)
        .where(se.id == _param("series_id", se.id), is_new)
        .values(instance_count=se.instance_count + 1)
        .returning(se.id)
        .cte("series")
    )
    return (
        select(
            select(inserted.c.id).scalar_subquery().label("inserted_id"),
            select(study.c.state_before).scalar_subquery().label("state_before"),
            select(study.c.state_after).scalar_subquery().label("state_after"),
        )
        .add_cte(series, _events(inserted, study, is_new))
    )


@dataclass(frozen=True)
class Outcome:
    inserted: bool
    """The instance was new, and its rows and events are written."""
    held: bool
    """It named another patient than its study's, and moved the study to ``identity_conflict``."""


def record_in_one_statement(
    connection: Connection,
    instance_row: Mapping[str, Any],
    *,
    received_detail: Mapping[str, Any],
    modality: str | None,
    reopen_study: bool,
    is_report: bool,
) -> Outcome:
    """Write a new instance's rows and events; nothing but the study's lock when the UID is known.

    ``instance_row`` holds the instance's ``p_``-named values, the same the statements of
    :mod:`radassist.intake.record_steps` take on other databases; ``received_detail`` is the
    ``instance:received`` event's detail, to which the statement adds the instance id and
    ``duplicate``.
    """
    row = connection.execute(
        _statement(),
        {
            **instance_row,
            "p_modality": modality,
            "p_reopen": reopen_study,
            "p_is_report": is_report,
            "p_detail": dict(received_detail),
        },
    ).one()
    held = row.state_after == StudyState.IDENTITY_CONFLICT and row.state_before != StudyState.IDENTITY_CONFLICT
    return Outcome(inserted=row.inserted_id is not None, held=held)


__all__ = ["Outcome", "record_in_one_statement"]
