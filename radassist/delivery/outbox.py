"""Turn a finished draft into outputs (SR files, ORU message) and one outbox row per destination.

Everything a delivery sends is built here once and kept on disk, so every retry re-sends exactly
the same SOP Instance UID and the same MSH-10.  One SR file is built per SR class that some
destination asks for (Enhanced by default, Comprehensive, Basic Text for old archives); each
class has its own deterministic SOP Instance UID (:func:`radassist.sr.uids.sr_uids_for_job`) and
each delivery points at the file of its destination's class.  A re-draft's SRs name the earlier
job's SRs in PredecessorDocumentsSequence.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy import select
from sqlalchemy.orm import Session

import radassist
from radassist.config import Destination, Settings
from radassist.db.tables import Delivery, Draft, Job, Study
from radassist.events import EventTag, record_event
from radassist.hl7.oru import build_oru
from radassist.pipelines import pipeline_for
from radassist.sr.document import SR_CLASSES, CodedLabel, RequestedProcedure, SrClass, build_draft_sr
from radassist.sr.uids import sr_uids_for_job
from radassist.states import DeliveryChannel
from radassist.store.outputs import OutputStore

logger = logging.getLogger(__name__)

RIS_DESTINATION = "ris"
_SR_FILE_NAMES: dict[str, str] = {
    "enhanced": "draft-sr.dcm",
    "comprehensive": "draft-sr-comprehensive.dcm",
    "basic": "draft-sr-basic.dcm",
}


def read_headers(paths: Sequence[Path]) -> list[Dataset]:
    """The source instances' headers (no pixel data), for the SR's evidence and patient modules."""
    return [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]


def hl7_control_id(job: Job) -> str:
    """MSH-10 for the job's ORU: fixed by the job id, so a retry is recognisably the same message."""
    return job.id.hex[:20]


def sr_classes_needed(destinations: Sequence[Destination]) -> list[SrClass]:
    """The SR classes the destinations ask for, Enhanced first; Enhanced alone when there are none."""
    wanted = {dest.sr_class for dest in destinations} or {"enhanced"}
    return [cls for cls in SR_CLASSES if cls in wanted]


def job_outputs(session: Session, job: Job, settings: Settings) -> tuple[list[Destination], bool]:
    """The destinations of the job's pipeline (chosen by the AE title the study was sent to), and
    whether its ORU goes to the RIS."""
    study = session.get(Study, job.study_id)
    pipeline = pipeline_for(settings, study.called_ae_title if study is not None else None)
    wanted = set(pipeline.destinations)
    return [d for d in settings.destinations if d.name in wanted], pipeline.hl7


def previous_job_id(session: Session, job: Job) -> uuid.UUID | None:
    """The job this one re-drafts: ``jobs.supersedes_job_id``.  On a schema without that column
    (an older tree), the study's latest earlier job that produced an SR."""
    if hasattr(Job, "supersedes_job_id"):
        return getattr(job, "supersedes_job_id", None)
    return session.scalars(
        select(Job.id)
        .where(
            Job.study_id == job.study_id,
            Job.id != job.id,
            Job.sr_path.is_not(None),
            Job.created_at <= job.created_at,
        )
        .order_by(Job.created_at.desc())
        .limit(1)
    ).first()


def predecessor_headers(session: Session, job_id: uuid.UUID, outputs: OutputStore) -> list[Dataset]:
    """Headers of the SR files an earlier job produced (read from the output store)."""
    paths = set(
        session.scalars(
            select(Delivery.payload_path).where(
                Delivery.job_id == job_id, Delivery.channel == DeliveryChannel.SR
            )
        ).all()
    )
    earlier = session.get(Job, job_id)
    if earlier is not None and earlier.sr_path:
        paths.add(earlier.sr_path)
    headers: dict[str, Dataset] = {}
    for relpath in sorted(p for p in paths if p):
        try:
            ds = pydicom.dcmread(outputs.path(relpath), stop_before_pixels=True)
        except (OSError, InvalidDicomError, ValueError):
            logger.warning("an earlier SR file is missing or unreadable; not referenced as predecessor")
            continue
        headers[str(ds.SOPInstanceUID)] = ds
    return list(headers.values())


def _same_class_first(predecessors: list[Dataset], sop_class_uid: str) -> list[Dataset]:
    """The earlier SR of the same SOP class (what this destination received), else all of them."""
    same = [ds for ds in predecessors if str(ds.SOPClassUID) == sop_class_uid]
    return same or predecessors


def _labels(generation: dict[str, Any]) -> list[CodedLabel]:
    out: list[CodedLabel] = []
    for label in generation.get("labels") or []:
        try:
            if isinstance(label, dict):
                out.append(CodedLabel(str(label["code"]), str(label["scheme"]), str(label["meaning"])))
            else:
                code, scheme, meaning = label
                out.append(CodedLabel(str(code), str(scheme), str(meaning)))
        except (KeyError, TypeError, ValueError):
            logger.warning("a coded label of the draft is malformed; left out of the SR")
    return out


def _order(session: Session, job: Job) -> Any:
    """The RIS's order for the study's accession number, when the HL7 listener received one."""
    try:
        from radassist.ris.context import order_context
    except ImportError:  # the inbound HL7 side is optional
        return None
    study = session.get(Study, job.study_id)
    return order_context(session, study.accession_number_hash if study is not None else None)


def requested_procedure(order: Any, indication: str | None) -> RequestedProcedure:
    """What was ordered, from the RIS order when known (the accession comes from the images)."""
    if order is None:
        return RequestedProcedure(reason=indication)
    code = None
    if order.procedure_code and order.procedure_system:
        code = CodedLabel(
            order.procedure_code, order.procedure_system, order.procedure_text or order.procedure_code
        )
    return RequestedProcedure(
        placer_order_number=order.placer_order_number,
        filler_order_number=order.filler_order_number,
        description=order.procedure_text,
        code=code,
        reason=order.indication or indication,
    )


def create_outputs(
    session: Session,
    job: Job,
    draft: Draft,
    sources: Sequence[Dataset],
    settings: Settings,
    outputs: OutputStore,
    now: dt.datetime,
) -> list[Delivery]:
    """Build and store the SRs and ORU for ``job``, and add their outbox rows to the session."""
    generation = dict(draft.generation or {})
    indication = generation.get("indication")
    order = _order(session, job)
    if order is not None and not indication:
        indication = order.indication
    destinations, send_hl7 = job_outputs(session, job, settings)
    previous = previous_job_id(session, job)
    predecessors = predecessor_headers(session, previous, outputs) if previous is not None else []

    sr_paths: dict[str, str] = {}
    for sr_class in sr_classes_needed(destinations):
        series_uid, sop_uid = sr_uids_for_job(job.id, sr_class)
        sop_class_uid = {
            "enhanced": pydicom.uid.EnhancedSRStorage,
            "comprehensive": pydicom.uid.ComprehensiveSRStorage,
            "basic": pydicom.uid.BasicTextSRStorage,
        }[sr_class]
        sr = build_draft_sr(
            sources,
            findings=draft.findings,
            impression=draft.impression,
            series_instance_uid=series_uid,
            sop_instance_uid=sop_uid,
            model_name=draft.model_name,
            model_revision=draft.model_revision,
            software_version=radassist.__version__,
            indication=indication,
            now=now,
            sr_class=sr_class,
            key_image_uids=generation.get("source_sop_instance_uids") or None,
            labels=_labels(generation),
            requested_procedure=requested_procedure(order, indication),
            predecessors=_same_class_first(predecessors, sop_class_uid) or None,
        )
        buffer = io.BytesIO()
        sr.save_as(buffer, enforce_file_format=True)
        sr_paths[sr_class] = outputs.write(job.id, _SR_FILE_NAMES[sr_class], buffer.getvalue())
        if job.sr_path is None or sr_class == "enhanced":
            job.sr_sop_instance_uid = sop_uid
            job.sr_path = sr_paths[sr_class]
    record_event(
        session,
        EventTag.SR_BUILT,
        study_id=job.study_id,
        job_id=job.id,
        sr_classes=list(sr_paths),
        predecessors=len(predecessors),
    )

    deliveries = [
        Delivery(
            job_id=job.id,
            channel=DeliveryChannel.SR,
            destination=destination.name,
            payload_path=sr_paths[destination.sr_class],
            next_attempt_at=now,
        )
        for destination in destinations
    ]
    if send_hl7:
        control_id = hl7_control_id(job)
        oru_kwargs: dict[str, Any] = {"order": order} if order is not None else {}
        message = build_oru(
            sources[0],
            findings=draft.findings,
            impression=draft.impression,
            control_id=control_id,
            study_instance_uid=str(sources[0].StudyInstanceUID),
            hl7=settings.hl7,
            now=now,
            **oru_kwargs,
        )
        relpath = outputs.write(job.id, "draft-oru.hl7", message.encode("utf-8"))
        deliveries.append(
            Delivery(
                job_id=job.id,
                channel=DeliveryChannel.HL7,
                destination=RIS_DESTINATION,
                control_id=control_id,
                payload_path=relpath,
                next_attempt_at=now,
            )
        )
    session.add_all(deliveries)
    logger.info("outputs built: %d SR classes, %d deliveries", len(sr_paths), len(deliveries))
    return deliveries
