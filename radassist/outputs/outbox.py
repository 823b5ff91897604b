"""The build-outputs stage of one job: drafted -> delivering, with one delivery row per output.

The outputs are built before the job's row is touched, so the database is written in one short
transaction: the compare-and-set ``drafted -> delivering`` (a duplicated or late message, or a
cancelled job, builds nothing into the outbox), the job's SR, and one delivery row per
destination and for the RIS.  An output that could not be built is a delivery row in state
``failed`` with its reason, and one that must not go yet is ``held`` with its reason
(:mod:`radassist.outputs.holds`), while the others go out; a job left with nothing to send and
nothing held is closed at once (done, or failed with those reasons).  Everything a delivery sends is stored here once, so
every retry sends the same SOP Instance UID and the same MSH-10.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.tables import Delivery, Draft, Job, Study
from radassist.db.transitions import set_job_state
from radassist.delivery.outcome import finish_job_if_delivered
from radassist.events import EventTag, record_event
from radassist.outputs.build import BuiltOutputs, build_outputs
from radassist.outputs.holds import Hold, failed_build_hold, oru_hold
from radassist.outputs.inputs import BuildInputs, gather, study_sources
from radassist.outputs.plan import RIS_DESTINATION, OutputPlan, plan_outputs
from radassist.reasons import plain_reason
from radassist.states import DeliveryChannel, DeliveryState, JobState
from radassist.store.outputs import OutputStore

logger = logging.getLogger(__name__)

BUILD_FAILED = "output.build"
"""The error code of a delivery whose output could not be built."""


def _inputs(session: Session, job: Job, draft: Draft, settings: Settings, outputs: OutputStore) -> BuildInputs | str:
    """The build inputs, or why they could not be read."""
    try:
        sources = study_sources(session, job.study_id, settings.storage.instances_dir)
    except Exception as exc:  # noqa: BLE001 -- becomes every output's reason
        logger.warning("the received instances could not be read (%s)", type(exc).__name__)
        return plain_reason(exc)
    if not sources:
        return "the study has no received instance"
    return gather(session, job, draft, sources, outputs, settings.storage.instances_dir)


def _oru_state(built: BuiltOutputs, hold: Hold | None) -> dict[str, object]:
    """The ORU row's state: pending, held (with the reason) or failed (with the reason)."""
    if built.oru_file is not None:
        return _held(hold) if hold is not None else _pending()
    failed_hold = failed_build_hold(built.oru_failure_code, built.oru_failure)
    return _held(failed_hold) if failed_hold is not None else _failed(built.oru_failure)


def _rows(job_id: uuid.UUID, plan: OutputPlan, built: BuiltOutputs, now: dt.datetime,
          oru_hold: Hold | None = None) -> list[Delivery]:
    """One delivery per destination (its class's SR), one more per destination for a grounded draft's
    measurement report (when its class can carry one), and one for the RIS; failed when not built,
    held when it must not go yet."""
    rows = []
    for destination in plan.destinations:
        stored = built.sr_files.get(destination.sr_class)
        rows.append(Delivery(
            job_id=job_id, channel=DeliveryChannel.SR, destination=destination.name, next_attempt_at=now,
            payload_path=stored[1] if stored else None,
            **(_pending() if stored else _failed(built.sr_failures.get(destination.sr_class))),
        ))
    for destination in plan.destinations:
        sr_class = destination.sr_class
        if sr_class not in built.grounding_files and sr_class not in built.grounding_failures:
            continue  # not grounded, or a class that cannot carry image regions (Basic Text)
        report = built.grounding_files.get(sr_class)
        rows.append(Delivery(
            job_id=job_id, channel=DeliveryChannel.GROUNDING_SR, destination=destination.name, next_attempt_at=now,
            payload_path=report[1] if report else None,
            **(_pending() if report else _failed(built.grounding_failures.get(sr_class))),
        ))
    if plan.send_hl7:
        control_id, relpath = built.oru_file or (None, None)
        rows.append(Delivery(
            job_id=job_id, channel=DeliveryChannel.HL7, destination=RIS_DESTINATION, next_attempt_at=now,
            control_id=control_id, payload_path=relpath, **_oru_state(built, oru_hold),
        ))
    return rows


def _pending() -> dict[str, object]:
    return {"state": DeliveryState.PENDING}


def _held(hold: Hold) -> dict[str, object]:
    return {"state": DeliveryState.HELD, "last_error_code": hold.code, "last_error_message": hold.message[:2000]}


def _failed(reason: str | None) -> dict[str, object]:
    return {"state": DeliveryState.FAILED, "last_error_code": BUILD_FAILED,
            "last_error_message": (reason or "the output could not be built")[:2000]}


def _record(session: Session, job: Job, built: BuiltOutputs, rows: list[Delivery], predecessors: int) -> None:
    if built.sr_files:
        record_event(session, EventTag.SR_BUILT, study_id=job.study_id, job_id=job.id,
                     sr_classes=list(built.sr_files), predecessors=predecessors)
    if built.grounding_files:
        record_event(session, EventTag.GROUNDING_SR_BUILT, study_id=job.study_id, job_id=job.id,
                     sr_classes=list(built.grounding_files), boxes=built.boxes)
    for row in rows:
        if row.state is DeliveryState.FAILED:
            record_event(session, EventTag.OUTPUT_FAILED, study_id=job.study_id, job_id=job.id,
                         channel=str(row.channel), destination=row.destination, code=BUILD_FAILED)
        elif row.state is DeliveryState.HELD:
            record_event(session, EventTag.OUTPUT_HELD, study_id=job.study_id, job_id=job.id,
                         channel=str(row.channel), destination=row.destination, code=row.last_error_code)


def build_job_outputs(
    session: Session, job_id: uuid.UUID, settings: Settings, outputs: OutputStore, now: dt.datetime
) -> list[uuid.UUID] | None:
    """Build the drafted job's outputs and fill its outbox; the caller commits, then queues the
    returned pending deliveries.  None when the job is not ``drafted`` (nothing was written)."""
    job = session.get(Job, job_id)
    draft = session.scalars(select(Draft).where(Draft.job_id == job_id)).one_or_none()
    if job is None or job.state is not JobState.DRAFTED or draft is None:
        return None
    study = session.get(Study, job.study_id)
    plan = plan_outputs(settings, study.called_ae_title if study is not None else None)
    inputs = _inputs(session, job, draft, settings, outputs)
    built = build_outputs(plan, inputs, draft, job_id, settings.hl7, now, outputs)
    sop_uid, sr_path = built.job_sr or (None, None)
    if not set_job_state(session, job_id, JobState.DRAFTED, JobState.DELIVERING,
                         sr_sop_instance_uid=sop_uid, sr_path=sr_path):
        return None
    session.expire(job)
    rows = _rows(job_id, plan, built, now, oru_hold(inputs, settings.hl7))
    session.add_all(rows)
    session.flush()
    _record(session, job, built, rows, len(inputs.predecessors) if isinstance(inputs, BuildInputs) else 0)
    if not any(row.state is DeliveryState.PENDING for row in rows):
        finish_job_if_delivered(session, job_id, job.study_id, now)  # nothing to send: done, or failed
    logger.info("outputs built: %d SR classes, %d deliveries (%d not built, %d held)", len(built.sr_files),
                len(rows), sum(row.state is DeliveryState.FAILED for row in rows),
                sum(row.state is DeliveryState.HELD for row in rows))
    return [row.id for row in rows if row.state is DeliveryState.PENDING]
