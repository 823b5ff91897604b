"""Turn a finished draft into outputs (SR file, ORU message) and one outbox row per destination.

Everything a delivery sends is built here once and kept on disk, so every retry re-sends exactly
the same SOP Instance UID and the same MSH-10.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import pydicom
from pydicom import Dataset
from sqlalchemy.orm import Session

import radassist
from radassist.config import Settings
from radassist.db.tables import Delivery, Draft, Job
from radassist.events import EventTag, record_event
from radassist.hl7.oru import build_oru
from radassist.sr.document import build_draft_sr
from radassist.sr.uids import sr_uids_for_job
from radassist.states import DeliveryChannel
from radassist.store.outputs import OutputStore

logger = logging.getLogger(__name__)

RIS_DESTINATION = "ris"


def read_headers(paths: Sequence[Path]) -> list[Dataset]:
    """The source instances' headers (no pixel data), for the SR's evidence and patient modules."""
    return [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]


def hl7_control_id(job: Job) -> str:
    """MSH-10 for the job's ORU: fixed by the job id, so a retry is recognisably the same message."""
    return job.id.hex[:20]


def create_outputs(
    session: Session,
    job: Job,
    draft: Draft,
    sources: Sequence[Dataset],
    settings: Settings,
    outputs: OutputStore,
    now: dt.datetime,
) -> list[Delivery]:
    """Build and store the SR and ORU for ``job``, and add their outbox rows to the session."""
    series_uid, sop_uid = sr_uids_for_job(job.id)
    indication = (draft.generation or {}).get("indication")
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
    )
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    job.sr_sop_instance_uid = sop_uid
    job.sr_path = outputs.write(job.id, "draft-sr.dcm", buffer.getvalue())
    record_event(session, EventTag.SR_BUILT, study_id=job.study_id, job_id=job.id)

    deliveries = [
        Delivery(
            job_id=job.id,
            channel=DeliveryChannel.SR,
            destination=destination.name,
            payload_path=job.sr_path,
            next_attempt_at=now,
        )
        for destination in settings.destinations
    ]
    if settings.hl7.enabled:
        control_id = hl7_control_id(job)
        message = build_oru(
            sources[0],
            findings=draft.findings,
            impression=draft.impression,
            control_id=control_id,
            study_instance_uid=str(sources[0].StudyInstanceUID),
            hl7=settings.hl7,
            now=now,
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
    logger.info("outputs built: %d deliveries", len(deliveries))
    return deliveries
