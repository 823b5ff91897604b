"""One draft SR file of one SR class, from the draft and its inputs (built by :mod:`radassist.sr`)."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pydicom
from pydicom import Dataset

import radassist
from radassist.db.tables import Draft
from radassist.outputs.inputs import BuildInputs
from radassist.ris.context import OrderContext
from radassist.safety.gate import stated_warnings
from radassist.sr.document import CodedLabel, RequestedProcedure, SrClass, build_draft_sr
from radassist.sr.uids import sr_uids_for_job
from radassist.store.outputs import OutputStore

SR_FILE_NAMES: dict[SrClass, str] = {
    "enhanced": "draft-sr.dcm",
    "comprehensive": "draft-sr-comprehensive.dcm",
    "basic": "draft-sr-basic.dcm",
}
SR_SOP_CLASSES: dict[SrClass, str] = {
    "enhanced": pydicom.uid.EnhancedSRStorage,
    "comprehensive": pydicom.uid.ComprehensiveSRStorage,
    "basic": pydicom.uid.BasicTextSRStorage,
}
SR_CLASS_NAMES: dict[SrClass, str] = {"enhanced": "Enhanced", "comprehensive": "Comprehensive", "basic": "Basic Text"}


def requested_procedure(order: OrderContext | None, indication: str | None) -> RequestedProcedure:
    """What was ordered, from the RIS order when known (the accession comes from the images)."""
    if order is None:
        return RequestedProcedure(reason=indication)
    code = None
    if order.procedure_code and order.procedure_system:
        code = CodedLabel(order.procedure_code, order.procedure_system, order.procedure_text or order.procedure_code)
    return RequestedProcedure(
        placer_order_number=order.placer_order_number,
        filler_order_number=order.filler_order_number,
        description=order.procedure_text,
        code=code,
        reason=order.indication or indication,
    )


def _same_class_first(predecessors: list[Dataset], sop_class_uid: str) -> list[Dataset]:
    """The earlier SR of the same SOP class (what this destination received), else all of them."""
    same = [ds for ds in predecessors if str(ds.SOPClassUID) == sop_class_uid]
    return same or predecessors


def build_sr_file(
    inputs: BuildInputs, draft: Draft, job_id: uuid.UUID, sr_class: SrClass, now: dt.datetime, outputs: OutputStore
) -> tuple[str, str]:
    """Build and store the job's SR of ``sr_class``; its SOP Instance UID and stored path.

    Raises what the builder raises (``TypeError``/``ValueError`` naming the argument).
    """
    series_uid, sop_uid = sr_uids_for_job(job_id, sr_class)
    sr = build_draft_sr(
        inputs.sources,
        findings=draft.findings,
        impression=draft.impression,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        model_name=draft.model_name,
        model_revision=draft.model_revision,
        software_version=radassist.__version__,
        indication=inputs.indication,
        now=now,
        sr_class=sr_class,
        key_image_uids=inputs.key_image_uids or None,
        labels=inputs.labels,
        requested_procedure=requested_procedure(inputs.order, inputs.indication),
        predecessors=_same_class_first(inputs.predecessors, SR_SOP_CLASSES[sr_class]) or None,
        comparison=inputs.comparison,
        comparison_sources=inputs.comparison_sources,
        warnings=stated_warnings(draft.warnings),
    )
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return sop_uid, outputs.write(job_id, SR_FILE_NAMES[sr_class], buffer.getvalue())
