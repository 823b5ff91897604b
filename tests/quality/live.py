"""Drafted studies in a real database, and the RIS's signed reports as ORU^R01 messages, for the
live-measurement tests (the HL7 side goes through the real ``hl7_node`` listener)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from radassist.db.base import utcnow
from radassist.db.tables import Draft, Job, Study
from radassist.identifiers import accession_hash
from radassist.states import JobState, StudyState

NORMAL_FINDINGS = "The lungs are clear. No pleural effusion or pneumothorax. The cardiomediastinal silhouette is normal."
NORMAL_IMPRESSION = "No acute cardiopulmonary abnormality."
MISSED_PNEUMOTHORAX = "FINDINGS: Small left apical pneumothorax. No pleural effusion.\nIMPRESSION: Left pneumothorax."
CORRECTED_NORMAL = "FINDINGS: The lungs are clear. No pneumothorax.\nIMPRESSION: Normal chest."


@dataclass(frozen=True)
class Drafted:
    study_id: uuid.UUID
    job_id: uuid.UUID
    draft_id: uuid.UUID
    accession: str


def add_drafted_study(
    session: Session,
    accession: str,
    *,
    model_name: str = "tiny-main",
    shadow: bool = False,
    study: Study | None = None,
    findings: str = NORMAL_FINDINGS,
    impression: str = NORMAL_IMPRESSION,
    drafted_at: dt.datetime | None = None,
    profile: str = "cxr",
    sex: str = "F",
    age: str = "064Y",
) -> Drafted:
    """A complete chest-film study (or another job of ``study``) with a done job and its draft; committed."""
    now = drafted_at or utcnow()
    if study is None:
        study = Study(study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int % 10**15}", state=StudyState.COMPLETE,
                      accession_number_hash=accession_hash(accession), modality="CR", calling_ae_title="MODALITY",
                      patient_sex=sex, patient_age=age, study_description="CHEST PA")
        session.add(study)
        session.flush()
    job = Job(study_id=study.id, state=JobState.DONE, model_name=model_name, shadow=shadow, created_at=now,
              drafted_at=now, finished_at=now)
    session.add(job)
    session.flush()
    draft = Draft(job_id=job.id, findings=findings, impression=impression, raw_text=f"{findings}\n{impression}",
                  model_name=model_name, model_revision="r1", prompt="(prompt)", prompt_version="v-test",
                  generation={"profile": profile}, created_at=now)
    session.add(draft)
    session.commit()
    return Drafted(study.id, job.id, draft.id, accession)


def oru(accession: str, text: str, *, control_id: str, status: str = "F") -> str:
    """A signed report as the RIS sends it: accession in OBR-18, OBR-25 F or C, one TX OBX per line."""
    segments = [
        f"MSH|^~\\&|RIS|HOSP|RADASSIST|RADDEPT|20261201101500||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        "PID|1||SENTINEL-PID-4711^^^HOSP^MR||SENTINEL^PHI||19010203|F",
        f"ORC|RE|PLC-{accession}^HIS|FIL-{accession}^RIS",
        f"OBR|1|PLC-{accession}^HIS|FIL-{accession}^RIS|XR-CHEST^XR chest^L|||20261201101500|||||||||||"
        f"{accession}||||20261201103000|||{status}",
    ]
    segments += [f"OBX|{i}|TX|18782-3^Study observation^LN|1|{line}||||||{status}"
                 for i, line in enumerate(text.splitlines(), 1)]
    return "\r".join(segments) + "\r"
