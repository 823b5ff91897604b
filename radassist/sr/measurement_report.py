"""Build the grounded findings of a draft as a DICOM SR TID 1500 "Imaging Measurement Report".

One planar ROI (TID 1410 measurement group) per box of each grounded finding: a closed POLYLINE
SCOORD "Image Region" selected from the source image (and, for a multi-frame object, its frame),
the finding's words as a TEXT "Comment" qualitative evaluation, its code as "Finding" when one is
known, a short human-readable Tracking Identifier ("AI finding 2", "AI finding 2, region 1 of 3")
and a Tracking Unique Identifier derived from the SR's own SOP Instance UID.  A finding with
several boxes is several ROIs with the same words, because TID 1410 holds one region per group.

The report joins the source study in a series of its own, and says everywhere that it is an
unverified AI draft: the document flags (PARTIAL / UNVERIFIED / PRELIMINARY), the series
description, the device observer (the model, by name and revision), the contributing equipment,
and, in words, a "Qualitative Evaluations" comment (TID 1500 row 14) -- viewers such as OHIF
show none of the flags.  This is the structure OHIF v3's SR extension draws: root concept
Imaging Measurement Report (126000), measurement groups (125007) under Imaging Measurements
(126010), each with a Tracking Unique Identifier UIDREF and one SCOORD referencing the image.

All UIDs are arguments or derived from them, so rebuilding for a retry gives the same object.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import warnings
from collections.abc import Sequence
from typing import Literal

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes as dcm_codes
from pydicom.sr.coding import Code
from pydicom.valuerep import DA, TM

from radassist.grounding.geometry import MappedFinding, SourceBox
from radassist.sr import codes
from radassist.sr.header import (
    check_sources,
    contribution_datetime,
    evidence,
    fix_contribution_times,
    local_time,
)
from radassist.sr.uids import RADASSIST_NAMESPACE, device_observer_uid
from radassist.sr.values import CodedLabel, lo

SrClass = Literal["enhanced", "comprehensive"]
_SR_TYPES = {"enhanced": hd.sr.EnhancedSR, "comprehensive": hd.sr.ComprehensiveSR}

SERIES_DESCRIPTION = "AI FINDINGS ON IMAGES - NOT VERIFIED"
COMMENT: Code = dcm_codes.DCM.Comment  # 121106
QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")
IMAGING_PROCEDURE: Code = dcm_codes.SCT.ImagingProcedure  # 363679005, when the order names none


def grounding_sr_uids(job_id: uuid.UUID, sr_class: SrClass = "enhanced") -> tuple[str, str]:
    """``(series_instance_uid, sop_instance_uid)`` of the measurement report of ``job_id``'s draft
    in SR class ``sr_class``; distinct from the draft SR's, and the same on every retry.  The
    classes share the series; each has its own SOP Instance UID (SOP classes must not share one)."""
    if not isinstance(job_id, uuid.UUID):
        raise TypeError(f'Argument "job_id" must be a uuid.UUID, not {type(job_id).__name__}.')
    if sr_class not in _SR_TYPES:
        raise ValueError('Argument "sr_class" must be "enhanced" or "comprehensive".')
    series = uuid.uuid5(RADASSIST_NAMESPACE, f"grounding-sr-series:{job_id}")
    key = f"grounding-sr-instance:{job_id}" if sr_class == "enhanced" else f"grounding-sr-instance:{sr_class}:{job_id}"
    instance = uuid.uuid5(RADASSIST_NAMESPACE, key)
    return str(hd.UID.from_uuid(str(series))), str(hd.UID.from_uuid(str(instance)))


def tracking_uid(sop_instance_uid: str, finding: int, box: int) -> str:
    """The Tracking Unique Identifier of box ``box`` of finding ``finding`` in report ``sop_instance_uid``."""
    key = f"grounding-tracking:{sop_instance_uid}:{finding}:{box}"
    return str(hd.UID.from_uuid(str(uuid.uuid5(RADASSIST_NAMESPACE, key))))


def _frames(ds: pydicom.Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _region(box: SourceBox, source: pydicom.Dataset) -> hd.sr.ImageRegion:
    """The box as a closed POLYLINE on its source image (and frame, for a multi-frame object)."""
    frames = _frames(source)
    if box.frame_number > frames:
        raise ValueError('Argument "findings" names a frame its source image does not have.')
    if box.x_max > int(source.Columns) or box.y_max > int(source.Rows):
        raise ValueError('Argument "findings" holds a box beyond its source image.')
    return hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array(box.polyline(), dtype=np.float64),
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=str(source.SOPClassUID),
            referenced_sop_instance_uid=str(source.SOPInstanceUID),
            referenced_frame_numbers=[box.frame_number] if frames > 1 else None,
        ),
    )


def _code(code: CodedLabel | None) -> hd.sr.CodedConcept | None:
    if code is None:
        return None
    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=lo(code.meaning))


def _groups(
    findings: Sequence[MappedFinding],
    by_uid: dict[str, pydicom.Dataset],
    sop_instance_uid: str,
    algorithm: hd.sr.AlgorithmIdentification,
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    groups = []
    number = 0
    for finding_index, finding in enumerate(findings):
        if not finding.boxes:
            continue
        number += 1
        words = " ".join(finding.text.split())
        if not words:
            raise ValueError(f'Item {finding_index} of argument "findings" has boxes but no text.')
        for box_index, box in enumerate(finding.boxes):
            source = by_uid.get(box.sop_instance_uid)
            if source is None:
                raise ValueError(f'Item {finding_index} of argument "findings" is on an image not in "sources".')
            label = f"AI finding {number}"
            if len(finding.boxes) > 1:
                label += f", region {box_index + 1} of {len(finding.boxes)}"
            group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=tracking_uid(sop_instance_uid, finding_index, box_index), identifier=label
                ),
                referenced_region=_region(box, source),
                finding_type=_code(finding.code),
                algorithm_id=algorithm,
            )
            # TID 1410 qualitative evaluation as text (highdicom builds only the coded kind).
            group[0].ContentSequence.append(
                hd.sr.TextContentItem(
                    name=COMMENT, value=words, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
                )
            )
            groups.append(group)
    if not groups:
        raise ValueError('Argument "findings" holds no finding with a box.')
    return groups


def build_content(
    findings: Sequence[MappedFinding],
    images: Sequence[pydicom.Dataset],
    *,
    sop_instance_uid: str,
    model_name: str,
    model_revision: str | None,
    procedure: CodedLabel | None = None,
) -> hd.sr.MeasurementReport:
    """The TID 1500 content tree: observer = the model, image library of ``images``, one ROI per
    box, then the not-verified notice as a qualitative evaluation."""
    observer_name = model_name if not model_revision else f"{model_name} ({model_revision})"
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept.from_code(codes.OBSERVER_TYPE_DEVICE),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_observer_uid(model_name, model_revision),
            name=lo(observer_name),
            manufacturer_name=codes.MANUFACTURER,
            model_name=lo(model_name),
        ),
    )
    algorithm = hd.sr.AlgorithmIdentification(name=lo(model_name), version=lo(model_revision or "unspecified"))
    by_uid = {str(ds.SOPInstanceUID): ds for ds in images}
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_code(procedure) or IMAGING_PROCEDURE,
        imaging_measurements=_groups(findings, by_uid, sop_instance_uid, algorithm),
        language_of_content_item_and_descendants=hd.sr.LanguageOfContentItemAndDescendants(
            language=hd.sr.CodedConcept.from_code(codes.LANGUAGE_EN_US)
        ),
        referenced_images=list(images),
    )
    evaluations = hd.sr.ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    evaluations.ContentSequence = hd.sr.ContentSequence(
        [hd.sr.TextContentItem(name=COMMENT, value=codes.DRAFT_NOTICE,
                               relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)]
    )
    report[0].ContentSequence.append(evaluations)
    return report


def _referenced(findings: Sequence[MappedFinding], evidence: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The evidence items that some box is drawn on, in the order the boxes name them (so that a
    rebuild from the same findings gives the same image library, whatever the order of sources)."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in evidence}
    used = dict.fromkeys(box.sop_instance_uid for finding in findings for box in finding.boxes)
    return [by_uid[uid] for uid in used if uid in by_uid]


def _check_arguments(
    findings: Sequence[MappedFinding], sr_class: str, uids: dict[str, str], model_name: str, software_version: str
) -> None:
    if isinstance(findings, MappedFinding) or not isinstance(findings, Sequence):
        raise TypeError('Argument "findings" must be a sequence of MappedFinding.')
    if not all(isinstance(f, MappedFinding) for f in findings):
        raise TypeError('Items of argument "findings" must be MappedFinding.')
    if sr_class not in _SR_TYPES:
        raise ValueError('Argument "sr_class" must be "enhanced" or "comprehensive".')
    for name, uid in uids.items():
        if not isinstance(uid, str) or len(uid) > 64 or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid):
            raise ValueError(f'Argument "{name}" is not a valid DICOM UID.')
    if not model_name or not model_name.strip():
        raise ValueError('Argument "model_name" must not be empty.')
    if not software_version or not software_version.strip():
        raise ValueError('Argument "software_version" must not be empty.')


def build_measurement_report(
    sources: Sequence[pydicom.Dataset],
    findings: Sequence[MappedFinding],
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    model_name: str,
    model_revision: str | None,
    software_version: str,
    now: dt.datetime | None = None,
    sr_class: SrClass = "enhanced",
    series_number: int = 9902,
    procedure: CodedLabel | None = None,
) -> pydicom.Dataset:
    """Build the measurement report for the boxes of ``findings`` on the study of ``sources``.

    ``sources`` are the headers of the study's instances the model was shown (every box must be
    on one of them); ``findings`` come from :func:`radassist.grounding.map_findings` (findings
    without boxes are left out).  ``procedure`` is the ordered procedure's code, when known.

    Raises ``TypeError``/``ValueError`` naming the argument; messages carry no patient data.
    """
    study_uid = check_sources(sources)
    _check_arguments(
        findings,
        sr_class,
        {"series_instance_uid": series_instance_uid, "sop_instance_uid": sop_instance_uid},
        model_name,
        software_version,
    )
    evidence_items = evidence(sources)
    header = evidence_items[0]
    local_now, tz_offset = local_time(now or dt.datetime.now(dt.UTC), header)
    try:
        content = build_content(
            findings,
            _referenced(findings, evidence_items),
            sop_instance_uid=sop_instance_uid,
            model_name=model_name,
            model_revision=model_revision,
            procedure=procedure,
        )
    except (AttributeError, KeyError) as exc:
        # highdicom reads the image library's descriptors from the sources; keep only the kind.
        raise ValueError(f'Argument "sources" cannot describe the images ({type(exc).__name__}).') from None
    sr = _document(
        content,
        evidence_items,
        header,
        sr_class=sr_class,
        series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
        series_number=series_number,
        model_name=model_name,
        model_revision=model_revision,
        software_version=software_version,
        local_now=local_now,
    )
    if tz_offset is not None:
        sr.TimezoneOffsetFromUTC = tz_offset
    fix_contribution_times(sr, contribution_datetime(local_now, tz_offset))  # as the draft SR's
    if sr.StudyInstanceUID != study_uid:  # highdicom copies it from the first evidence item
        raise ValueError('Argument "sources" does not name one study.')
    return sr


def _document(
    content: hd.sr.MeasurementReport,
    evidence: list[pydicom.Dataset],
    header: pydicom.Dataset,
    *,
    sr_class: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int,
    model_name: str,
    model_revision: str | None,
    software_version: str,
    local_now: dt.datetime,
) -> pydicom.Dataset:
    """The SR document around ``content``: same study and patient as ``header``, a series of its own."""
    versions = [lo(f"RadAssist {software_version}")]
    if model_revision:
        versions.append(lo(f"model {model_revision}"))
    equipment = hd.ContributingEquipment(
        manufacturer=codes.MANUFACTURER,
        purpose_of_reference=codes.PROCESSING_EQUIPMENT,
        manufacturer_model_name=lo(model_name),
        software_versions=versions,
        contribution_datetime=local_now.replace(microsecond=0, tzinfo=None),
        contribution_description="AI findings on images, not verified",
    )
    institution = header.get("InstitutionName") or None
    try:
        with warnings.catch_warnings():
            # highdicom warns about single-component names quoting the name itself (patient data).
            warnings.filterwarnings("ignore", message=r"The string .* person name", category=UserWarning)
            sr = _SR_TYPES[sr_class](
                evidence=evidence,
                content=content[0],
                series_instance_uid=series_instance_uid,
                series_number=series_number,
                sop_instance_uid=sop_instance_uid,
                instance_number=1,
                manufacturer=codes.MANUFACTURER,
                is_complete=False,
                is_final=False,
                is_verified=False,
                institution_name=lo(str(institution)) if institution else None,
                contributing_equipment=[equipment],
                specific_character_set="ISO_IR 192",
                series_description=SERIES_DESCRIPTION,
                manufacturer_model_name=lo(model_name),
                software_versions=lo(software_version),
                content_date=local_now.date(),
                content_time=local_now.time().replace(microsecond=0),
            )
    except (AttributeError, KeyError) as exc:
        # highdicom's messages may quote attribute values; keep only the kind of problem.
        raise ValueError(f'Argument "sources" cannot be used as SR evidence ({type(exc).__name__}).') from None
    stamp = local_now.replace(microsecond=0)
    sr.InstanceCreationDate = DA(stamp.date())
    sr.InstanceCreationTime = TM(stamp.time())
    sr.SeriesDate = DA(stamp.date())
    sr.SeriesTime = TM(stamp.time())
    for keyword in ("StudyDescription", "ReferringPhysicianName", "IssuerOfPatientID"):
        if keyword in header and keyword not in sr:
            sr[keyword] = header[keyword]
    return sr
