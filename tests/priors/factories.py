"""A patient's imaging history for the priors tests: chest radiographs (frontal and lateral), a CT, and
the reports that come with them (a radiologist's verified SR; our own draft SR, also one "verified").

Patient values are the sentinels of ``tests.dicom_factories`` so the logs can be searched for them.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import highdicom as hd
import numpy as np
import pydicom
from pydicom.uid import DigitalXRayImageStorageForPresentation, generate_uid

from radassist.sr import build_draft_sr, codes, sr_uids_for_job
from radassist_devtools.synthetic_dicom import grey_image
from tests.dicom_factories import (
    SENTINEL_ACCESSION,
    SENTINEL_BIRTH_DATE,
    SENTINEL_NAME,
    SENTINEL_PATIENT_ID,
    make_ct_study,
)

ISSUER = "SENTINEL-HOSP"


def make_dx(
    *, study_uid: str, series_uid: str, when: dt.datetime, view: str, instance_number: int,
    patient_id: str = SENTINEL_PATIENT_ID, issuer: str = ISSUER, accession: str = SENTINEL_ACCESSION,
    body_part: str = "CHEST", description: str = "XR CHEST 2 VIEWS",
) -> pydicom.Dataset:
    """One digital radiograph (DX for presentation), 16x16 pixels, with its ViewPosition."""
    pixels = np.arange(256, dtype=np.uint16).reshape(16, 16) * 9 % 4096
    ds = grey_image(DigitalXRayImageStorageForPresentation, pixels)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.AccessionNumber = accession
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "Synthetic Scanners Inc"
    ds.InstitutionName = "Sentinel General Hospital"
    ds.ReferringPhysicianName = "REFERRER^SENTINEL"
    ds.StudyDescription = description
    ds.SeriesDescription = f"{body_part} {view}"
    ds.PatientName = SENTINEL_NAME
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = issuer
    ds.PatientBirthDate = SENTINEL_BIRTH_DATE
    ds.PatientSex = "F"
    ds.BodyPartExamined = body_part
    ds.ViewPosition = view
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = instance_number
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ["L", "F"]
    return ds


def make_cxr_study(when: dt.datetime, **kwargs: str) -> list[pydicom.Dataset]:
    """A two-view chest radiograph: PA and lateral, one series each."""
    study_uid = generate_uid()
    return [
        make_dx(study_uid=study_uid, series_uid=generate_uid(), when=when, view=view, instance_number=n, **kwargs)
        for n, view in ((1, "PA"), (2, "LL"))
    ]


def _text(name: pydicom.sr.coding.Code, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=name, value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)


def _section(name: pydicom.sr.coding.Code, items: list[hd.sr.ContentItem]) -> hd.sr.ContainerContentItem:
    section = hd.sr.ContainerContentItem(name=name, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    section.ContentSequence = hd.sr.ContentSequence(items)
    return section


def make_radiologist_sr(
    evidence: Sequence[pydicom.Dataset], *, findings: str, impression: str, verified: bool = True,
    verified_at: dt.datetime = dt.datetime(2023, 1, 11, 8, 0, 0),
) -> pydicom.Dataset:
    """A radiologist's report as a Comprehensive SR in the study of ``evidence`` (verified by default)."""
    root = hd.sr.ContainerContentItem(name=codes.DIAGNOSTIC_IMAGING_REPORT, template_id="2000")
    root.ContentSequence = hd.sr.ContentSequence([
        _section(codes.FINDINGS, [_text(codes.FINDING, findings)]),
        _section(codes.IMPRESSIONS, [_text(codes.IMPRESSION, impression)]),
    ])
    verification: dict[str, object] = {}
    if verified:
        verification = {"verifying_observer_name": "RADIOLOGIST^ANN", "verifying_organization": "Sentinel General"}
    sr = hd.sr.ComprehensiveSR(
        evidence=list(evidence), content=root, series_instance_uid=generate_uid(), series_number=90,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="Hospital Reporting Inc",
        is_complete=True, is_final=verified, is_verified=verified, series_description="Report",
        **verification,  # type: ignore[arg-type]
    )
    if verified:
        sr.VerifyingObserverSequence[0].VerificationDateTime = verified_at.strftime("%Y%m%d%H%M%S")
    return sr


def make_our_draft(evidence: Sequence[pydicom.Dataset], *, impression: str) -> pydicom.Dataset:
    """Our own draft SR of the study of ``evidence`` (UNVERIFIED, as we send it)."""
    series_uid, sop_uid = sr_uids_for_job(uuid.uuid4())
    headers = []
    for ds in evidence:
        header = pydicom.Dataset()
        header.update({tag: element for tag, element in ds.items() if element.keyword != "PixelData"})
        header.file_meta = ds.file_meta
        headers.append(header)
    return build_draft_sr(
        headers, findings="Draft findings.", impression=impression, series_instance_uid=series_uid,
        sop_instance_uid=sop_uid, model_name="tiny-test-model", model_revision="1", software_version="0.1.0",
    )


def mark_verified(sr: pydicom.Dataset, when: dt.datetime) -> pydicom.Dataset:
    """``sr`` as a PACS that verified it would hold it (our draft, "signed" by mistake)."""
    sr.VerificationFlag = "VERIFIED"
    sr.CompletionFlag = "COMPLETE"
    observer = pydicom.Dataset()
    observer.VerifyingObserverName = "RADIOLOGIST^ANN"
    observer.VerifyingOrganization = "Sentinel General"
    observer.VerificationDateTime = when.strftime("%Y%m%d%H%M%S")
    observer.VerifyingObserverIdentificationCodeSequence = []
    sr.VerifyingObserverSequence = [observer]
    return sr


def part10(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@dataclass
class History:
    """The archive's content: the current study and the patient's other studies, by role."""

    current: list[pydicom.Dataset]
    prior_a: list[pydicom.Dataset]
    """DX chest, 2023-01-10: the newest relevant prior; its report is a verified SR (and our draft
    SR is there too, marked verified later, as a trap)."""
    prior_b: list[pydicom.Dataset]
    """DX chest, 2021-05-05: its report is the RIS's (accession ``PRIORB-ACC``), no SR."""
    report_a: pydicom.Dataset
    our_draft_a: pydicom.Dataset
    decoys: dict[str, list[pydicom.Dataset]] = field(default_factory=dict)
    """Studies that are never priors of ``current``: another patient, another issuer, too old,
    another body part, another modality, a later study."""

    def all_instances(self) -> list[pydicom.Dataset]:
        out = [*self.current, *self.prior_a, *self.prior_b, self.report_a, self.our_draft_a]
        for studies in self.decoys.values():
            out += studies
        return out


REPORT_A_FINDINGS = "Lungs clear. Heart size normal."
REPORT_A_IMPRESSION = "No acute cardiopulmonary disease (prior A)."
PRIOR_B_ACCESSION = "PRIORB-ACC"


def make_history() -> History:
    current = make_cxr_study(dt.datetime(2024, 3, 14, 9, 30))
    prior_a = make_cxr_study(dt.datetime(2023, 1, 10, 14, 0), accession="PRIORA-ACC")
    prior_b = make_cxr_study(dt.datetime(2021, 5, 5, 8, 15), accession=PRIOR_B_ACCESSION)
    report_a = make_radiologist_sr(prior_a, findings=REPORT_A_FINDINGS, impression=REPORT_A_IMPRESSION)
    our_draft_a = mark_verified(make_our_draft(prior_a, impression="OUR DRAFT IMPRESSION"),
                                dt.datetime(2023, 2, 1, 8, 0))
    ct = make_ct_study(series_count=1, instances_per_series=2)
    for ds in ct:
        ds.StudyDate = ds.SeriesDate = "20220606"
        ds.IssuerOfPatientID = ISSUER
    decoys = {
        "other_patient": make_cxr_study(dt.datetime(2023, 6, 1, 10, 0), patient_id="OTHER-PID-1"),
        "other_issuer": make_cxr_study(dt.datetime(2023, 8, 1, 10, 0), issuer="OTHER-HOSP"),
        "too_old": make_cxr_study(dt.datetime(2015, 2, 2, 10, 0)),
        "abdomen": make_cxr_study(dt.datetime(2023, 9, 1, 10, 0), body_part="ABDOMEN", description="XR ABDOMEN"),
        "ct": ct,
        "later": make_cxr_study(dt.datetime(2024, 5, 1, 10, 0)),
    }
    return History(current, prior_a, prior_b, report_a, our_draft_a, decoys)
