"""The measurement report of a grounded draft: a second SR beside the draft SR, with one planar ROI
per box (built by :mod:`radassist.sr.measurement_report`).

A draft is grounded when its generation record holds findings with boxes on the source images
(:mod:`radassist.models.grounded` records them).  One report is built per SR class the study's
destinations take that can carry image regions (Enhanced, Comprehensive); a destination that takes
Basic Text SR gets none.  Its UIDs are derived from the job (``grounding_sr_uids``), so building
again overwrites, never duplicates, as for the draft SR.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import radassist
from radassist.db.tables import Draft
from radassist.grounding.geometry import MappedFinding
from radassist.grounding.record import recorded_findings
from radassist.outputs.inputs import BuildInputs
from radassist.outputs.sr import requested_procedure
from radassist.sr.document import SrClass
from radassist.sr.measurement_report import SrClass as ReportClass
from radassist.sr.measurement_report import build_measurement_report, grounding_sr_uids
from radassist.store.outputs import OutputStore

GROUNDING_FILE_NAMES: dict[ReportClass, str] = {
    "enhanced": "grounding-sr.dcm",
    "comprehensive": "grounding-sr-comprehensive.dcm",
}
"""The SR classes a measurement report is built in, and the stored file of each."""


def report_classes(sr_classes: Iterable[SrClass]) -> list[ReportClass]:
    """The SR classes of ``sr_classes`` that can carry a measurement report, in their order."""
    out: list[ReportClass] = []
    for sr_class in sr_classes:
        if sr_class == "enhanced" or sr_class == "comprehensive":
            out.append(sr_class)
    return out


def grounded_findings(generation: Mapping[str, Any] | None) -> tuple[MappedFinding, ...]:
    """The draft's findings that have boxes; empty when the draft is not grounded.

    Raises ``ValueError`` when the record is there but malformed (the report then fails to build,
    with that reason, and the draft SR still goes out).
    """
    record = (generation or {}).get("grounding")
    if record is None:
        return ()
    return tuple(finding for finding in recorded_findings(record) if finding.boxes)


def build_grounding_file(
    inputs: BuildInputs, findings: tuple[MappedFinding, ...], draft: Draft, job_id: uuid.UUID, sr_class: ReportClass,
    now: dt.datetime, outputs: OutputStore,
) -> tuple[str, str]:
    """Build and store the job's measurement report of ``sr_class``; its SOP Instance UID and stored path.

    Raises what the builder raises (``TypeError``/``ValueError`` naming the argument).
    """
    series_uid, sop_uid = grounding_sr_uids(job_id, sr_class)
    report = build_measurement_report(
        inputs.sources,
        findings,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        model_name=draft.model_name,
        model_revision=draft.model_revision,
        software_version=radassist.__version__,
        now=now,
        sr_class=sr_class,
        procedure=requested_procedure(inputs.order, inputs.indication).code,
    )
    buffer = io.BytesIO()
    report.save_as(buffer, enforce_file_format=True)
    return sop_uid, outputs.write(job_id, GROUNDING_FILE_NAMES[sr_class], buffer.getvalue())
