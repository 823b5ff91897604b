"""The job's ORU^R01 for the RIS, from the draft and its inputs (built by :mod:`radassist.hl7.oru`)."""

from __future__ import annotations

import datetime as dt
import uuid

from radassist.config import Hl7Settings
from radassist.db.tables import Draft
from radassist.hl7.oru import build_oru
from radassist.outputs.inputs import BuildInputs
from radassist.outputs.plan import hl7_control_id
from radassist.safety.gate import stated_warnings
from radassist.store.outputs import OutputStore

ORU_FILE_NAME = "draft-oru.hl7"


def build_oru_file(
    inputs: BuildInputs, draft: Draft, job_id: uuid.UUID, hl7: Hl7Settings, now: dt.datetime, outputs: OutputStore
) -> tuple[str, str]:
    """Build and store the job's ORU; its MSH-10 and stored path.

    Raises what the builder raises (``TypeError``/``ValueError`` naming the argument).
    """
    if not inputs.sources:
        raise ValueError("the study has no received instance to take the patient and order from")
    control_id = hl7_control_id(job_id)
    first = inputs.sources[0]
    message = build_oru(
        first,
        findings=draft.findings,
        impression=draft.impression,
        control_id=control_id,
        study_instance_uid=str(first.StudyInstanceUID),
        hl7=hl7,
        now=now,
        order=inputs.order,
        comparison=inputs.comparison,
        warnings=stated_warnings(draft.warnings),
    )
    return control_id, outputs.write(job_id, ORU_FILE_NAME, message.encode("utf-8"))
