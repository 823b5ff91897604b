"""Never the wrong patient: what intake does when instances disagree on who the patient is.

Two rules, both enforced by :func:`radassist.intake.record.record_instance`:

* An instance whose SOP Instance UID is already stored under another study, another series, as
  another SOP class, or naming another patient, or whose Series Instance UID belongs to another
  study, is refused (``intake.identity_conflict``): the
  sender gets a failure status, the study that holds the UID gets an event saying so, and its rows
  and file stay as they were.  A UID names one object for ever (PS3.3 C.12.1.1.1); a sender that
  reuses one for something else has made a mistake we must not build a report on.
* A new instance of a study that names a different patient than the study's first instance is
  stored (nothing accepted is lost) but holds the study in ``identity_conflict``
  (:func:`hold_study`): its jobs in progress are cancelled, and no draft, SR or ORU is made until an
  admin decides with :func:`resolve_identity_conflict`.

Who the patient is is compared as a keyed hash (:mod:`radassist.intake.patient`), never as values.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, select, update
from sqlalchemy.orm import Session

from radassist.db.base import utcnow
from radassist.db.tables import AuditEntry, Delivery, Instance, Job, Series, Study
from radassist.errors import RejectedInput
from radassist.events import EventTag, record_event
from radassist.identifiers import study_handle
from radassist.states import DeliveryState, JobState, StudyState

logger = logging.getLogger(__name__)

CONFLICT_CODE = "intake.identity_conflict"
_ACTIVE_JOBS = (
    JobState.PRIORS, JobState.QUEUED, JobState.PREPARING, JobState.PREPARED, JobState.DRAFTING, JobState.DRAFTED, JobState.NEEDS_REVIEW, JobState.DELIVERING,
)
_OPEN_DELIVERIES = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.HELD)


class Mismatch(StrEnum):
    """What a received instance's UIDs are already stored with."""

    STUDY = "study"
    SERIES = "series"
    SOP_CLASS = "sop_class"
    PATIENT = "patient"
    SERIES_IN_OTHER_STUDY = "series_in_other_study"

    @property
    def description(self) -> str:
        return _MISMATCH_TEXT[self]


_MISMATCH_TEXT = {
    Mismatch.STUDY: "the SOP Instance UID is already stored under another study",
    Mismatch.SERIES: "the SOP Instance UID is already stored in another series",
    Mismatch.SOP_CLASS: "the SOP Instance UID is already stored as another SOP class",
    Mismatch.PATIENT: "the SOP Instance UID is already stored naming another patient",
    Mismatch.SERIES_IN_OTHER_STUDY: "the Series Instance UID is already stored under another study",
}


def refuse_reused_uid(
    session: Session, study_id: uuid.UUID, study_uid: str, mismatch: Mismatch, calling_ae: str
) -> RejectedInput:
    """Note on the holding study's timeline that its instance's UID came back naming something else,
    commit that note alone, and return the error to raise.

    Call it with the instance's own writes rolled back: they must not be committed with the note.
    """
    record_event(
        session, EventTag.INSTANCE_IDENTITY_REFUSED, study_id=study_id, code=CONFLICT_CODE,
        differs=str(mismatch), calling_ae=calling_ae,
    )
    session.commit()
    logger.warning("refused an instance from %s: %s (study %s; %s)",
                   calling_ae, mismatch.description, study_handle(study_uid), CONFLICT_CODE)
    return RejectedInput(mismatch.description, code=CONFLICT_CODE)


def hold_study(session: Session, study_id: uuid.UUID, study_uid: str, *, calling_ae: str) -> int:
    """The study (just moved to ``identity_conflict``) gets its event, and its jobs in progress and
    their open deliveries are cancelled; returns the number of jobs cancelled."""
    now = utcnow()
    record_event(session, EventTag.IDENTITY_CONFLICT, study_id=study_id, calling_ae=calling_ae)
    jobs = session.scalars(select(Job.id).where(Job.study_id == study_id, Job.state.in_(_ACTIVE_JOBS))).all()
    for job_id in jobs:
        session.execute(
            update(Job).where(Job.id == job_id, Job.state.in_(_ACTIVE_JOBS))
            .values(state=JobState.CANCELLED, finished_at=now, error_code=CONFLICT_CODE,
                    error_message="the study's instances name different patients")
        )
        cancelled = session.execute(
            update(Delivery).where(Delivery.job_id == job_id, Delivery.state.in_(_OPEN_DELIVERIES))
            .values(state=DeliveryState.CANCELLED)
        )
        assert isinstance(cancelled, CursorResult)
        record_event(session, EventTag.JOB_CANCELLED, study_id=study_id, job_id=job_id, reason=CONFLICT_CODE,
                     deliveries_cancelled=cancelled.rowcount)
    logger.error(
        "study %s held: its instances name different patients; an admin must resolve it (%d jobs cancelled)",
        study_handle(study_uid), len(jobs),
    )
    return len(jobs)


class Resolution(StrEnum):
    """An admin's decision on a study held for an identity conflict."""

    DROP_OTHERS = "drop_others"
    """The chosen instance names the right patient; instances naming anyone else leave the study."""
    SAME_PATIENT = "same_patient"
    """Every instance names the same person (e.g. a corrected spelling): all stay, under the chosen
    instance's identity (instances arriving later must name that one, or the study is held again)."""


@dataclass(frozen=True)
class ResolutionResult:
    ok: bool
    message: str
    removed_paths: tuple[str, ...] = field(default=())
    """Files (relative to the instance store) of the instances that left the study: remove them after
    the commit (:meth:`radassist.store.instances.InstanceStore.remove`)."""


def resolve_identity_conflict(
    session: Session,
    study_id: uuid.UUID,
    user: str,
    *,
    keep_instance_id: uuid.UUID,
    resolution: Resolution | str,
) -> ResolutionResult:
    """Release a study held for an identity conflict, as the admin ``user`` decided; audited.

    ``keep_instance_id`` is an instance of the study that names the right patient; ``resolution``
    says what happens to those that name someone else (:class:`Resolution`).  The study then goes
    back to ``receiving`` with its quiet time starting now, so it is drafted as any other.  A study
    not held, or an instance not in it, changes nothing and is audited as refused.  The caller commits.
    """
    resolution = Resolution(resolution)
    target = str(study_id)
    study = session.get(Study, study_id, with_for_update=True)
    if study is None or study.state != StudyState.IDENTITY_CONFLICT:
        return _refused(session, user, target, "the study is not held for an identity conflict")
    kept = session.get(Instance, keep_instance_id)
    if kept is None or kept.study_id != study_id:
        return _refused(session, user, target, "the chosen instance is not one of the study's")
    key = kept.patient_key
    if key is None:
        return _refused(session, user, target, "the chosen instance names no patient")
    # Instances naming no patient at all conflict with no one: they stay either way.
    others = and_(Instance.patient_key.is_not(None), Instance.patient_key != key)
    removed: tuple[str, ...] = ()
    if resolution is Resolution.DROP_OTHERS:
        removed = _drop_instances(session, study, others)
    else:
        session.execute(update(Instance).where(Instance.study_id == study_id, others).values(patient_key=key))
    now = utcnow()
    changed = session.execute(
        update(Study)
        .where(Study.id == study_id, Study.state == StudyState.IDENTITY_CONFLICT)
        .values(state=StudyState.RECEIVING, patient_key=key, last_received_at=now, completed_at=None)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(changed, CursorResult) and changed.rowcount == 1
    record_event(session, EventTag.IDENTITY_RESOLVED, study_id=study_id, resolution=str(resolution),
                 kept_instance_id=str(keep_instance_id), instances_removed=len(removed), by=user)
    session.add(AuditEntry(at=now, user_name=user, action="resolve_identity", target=target, outcome="done",
                           detail={"resolution": str(resolution), "kept_instance_id": str(keep_instance_id),
                                   "instances_removed": len(removed)}))
    session.expire(study)
    return ResolutionResult(True, f"identity conflict resolved ({resolution}); {len(removed)} instances removed",
                            removed)


def _drop_instances(session: Session, study: Study, others: ColumnElement[bool]) -> tuple[str, ...]:
    """Delete the instance rows naming another patient, recount the study and its series."""
    rows = session.execute(
        select(Instance.id, Instance.path).where(Instance.study_id == study.id, others)
    ).all()
    if not rows:
        return ()
    session.execute(delete(Instance).where(Instance.id.in_([row.id for row in rows])))
    counts: dict[uuid.UUID, int] = {
        series_id: count
        for series_id, count in session.execute(
            select(Instance.series_id, func.count()).where(Instance.study_id == study.id).group_by(Instance.series_id)
        )
    }
    for series_id in session.scalars(select(Series.id).where(Series.study_id == study.id)).all():
        if series_id in counts:
            session.execute(update(Series).where(Series.id == series_id).values(instance_count=counts[series_id]))
        else:
            session.execute(delete(Series).where(Series.id == series_id))
    session.execute(
        update(Study).where(Study.id == study.id).values(instance_count=sum(counts.values()))
        .execution_options(synchronize_session=False)
    )
    return tuple(row.path for row in rows)


def _refused(session: Session, user: str, target: str, message: str) -> ResolutionResult:
    session.add(AuditEntry(at=utcnow(), user_name=user, action="resolve_identity", target=target,
                           outcome="refused", detail={"reason": message}))
    return ResolutionResult(False, message)

