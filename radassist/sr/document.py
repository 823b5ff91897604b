"""Build the draft report as a DICOM SR document (TID 2000 "Basic Diagnostic Imaging Report").

The SR joins the source study (same Study Instance UID, patient and study modules copied by
highdicom) in a series of its own.  Every place a human or a PACS might look says that it is an
unverified AI draft: the document flags (PARTIAL / UNVERIFIED / PRELIMINARY), the series
description, the equipment module, the contributing equipment, the device observer and the first
Finding item (viewers such as OHIF show none of the flags).

Three SOP classes, chosen per destination: Enhanced SR (default), Comprehensive SR, and Basic
Text SR for old archives.  The content tree uses only value types and relationships that the
Basic Text SR IOD allows (CONTAINER, TEXT, CODE, UIDREF, IMAGE; CONTAINS, HAS OBS CONTEXT,
HAS CONCEPT MOD), so the same tree serves all three.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import highdicom as hd
import pydicom
from highdicom.sr.sop import _SR
from pydicom.sr.coding import Code
from pydicom.uid import BasicTextSRStorage
from pydicom.valuerep import DA, TM

from radassist.sr import codes
from radassist.sr.uids import device_observer_uid

logger = logging.getLogger(__name__)

SrClass = Literal["enhanced", "comprehensive", "basic"]
SR_CLASSES: tuple[SrClass, ...] = ("enhanced", "comprehensive", "basic")


@dataclass(frozen=True)
class CodedLabel:
    """A coded abnormality the model reported (e.g. SCT 36118008 "Pneumothorax")."""

    value: str
    scheme: str
    meaning: str

    def __post_init__(self) -> None:
        for name in ("value", "scheme", "meaning"):
            item = getattr(self, name)
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f'Field "{name}" of a coded label must be a non-empty string.')
        if len(self.value) > 64 or len(self.scheme) > 16:
            raise ValueError('A coded label\'s "value" (64) or "scheme" (16) is too long.')


@dataclass(frozen=True)
class RequestedProcedure:
    """What was ordered, for the SR's Referenced Request Sequence; every field optional.

    Holds the accession number: pass it to the builder, never to a log.
    """

    accession_number: str | None = None
    placer_order_number: str | None = None
    filler_order_number: str | None = None
    requested_procedure_id: str | None = None
    description: str | None = None
    code: CodedLabel | None = None
    reason: str | None = None

    def __repr__(self) -> str:  # never print the identifiers
        return "<RequestedProcedure>"


class BasicTextSR(_SR):
    """Basic Text SR (1.2.840.10008.5.1.4.1.1.88.11), for archives that know no newer SR class.

    highdicom builds Enhanced and Comprehensive SR; the Basic Text SR IOD has the same modules and
    only restricts the content tree, which :func:`build_content` already respects.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(sop_class_uid=BasicTextSRStorage, **kwargs)  # type: ignore[arg-type]


_SR_TYPES: dict[str, Callable[..., _SR]] = {
    "enhanced": hd.sr.EnhancedSR,
    "comprehensive": hd.sr.ComprehensiveSR,
    "basic": BasicTextSR,
}

_LO_MAX = 64
_REQUIRED_SOURCE_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
# highdicom reads these with attribute access from the first evidence item; type 2 in the SR.
_TYPE2_PATIENT_STUDY = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
)


class _DropPatientNameWarnings(logging.Filter):
    """Some highdicom versions log a doubtful ``patient_name`` with its value; drop that record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "patient_name" not in str(record.msg)


def _install_phi_guard() -> None:
    target = logging.getLogger("highdicom.base")
    if not any(isinstance(f, _DropPatientNameWarnings) for f in target.filters):
        target.addFilter(_DropPatientNameWarnings())


_install_phi_guard()


def _lo(value: str) -> str:
    """Fit a value into an LO element: at most 64 characters, no backslash or control characters."""
    cleaned = re.sub(r"[\\\x00-\x1f]", " ", value).strip()
    return cleaned[:_LO_MAX].rstrip()


def _paragraphs(text: str) -> list[str]:
    """One SR TEXT item per non-empty line of the model's output."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _check_sources(sources: Sequence[pydicom.Dataset]) -> str:
    if isinstance(sources, pydicom.Dataset) or not isinstance(sources, Sequence):
        raise TypeError('Argument "sources" must be a sequence of pydicom Datasets.')
    if len(sources) == 0:
        raise ValueError('Argument "sources" must contain at least one dataset.')
    study_uid: str | None = None
    for index, ds in enumerate(sources):
        if not isinstance(ds, pydicom.Dataset):
            raise TypeError(f'Item {index} of argument "sources" is not a pydicom Dataset.')
        missing = [kw for kw in _REQUIRED_SOURCE_KEYWORDS if not ds.get(kw)]
        if missing:
            raise ValueError(f'Item {index} of argument "sources" lacks {", ".join(missing)}.')
        if study_uid is None:
            study_uid = str(ds.StudyInstanceUID)
        elif str(ds.StudyInstanceUID) != study_uid:
            raise ValueError('All items of argument "sources" must belong to the same study.')
    assert study_uid is not None
    return study_uid


def _header_source(first: pydicom.Dataset) -> pydicom.Dataset:
    """A copy of the first source in which the type 2 patient/study attributes highdicom reads exist."""
    header = copy.deepcopy(first)
    for keyword in _TYPE2_PATIENT_STUDY:
        if keyword not in header:
            setattr(header, keyword, None)
    sex = header.get("PatientSex")
    if sex is not None and str(sex) not in ("M", "F", "O"):
        header.PatientSex = None
    return header


def _unique_instances(sources: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    seen: set[str] = set()
    unique: list[pydicom.Dataset] = []
    for ds in sources:
        uid = str(ds.SOPInstanceUID)
        if uid not in seen:
            seen.add(uid)
            unique.append(ds)
    return unique


def _known_class_first(sources: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """Put first an instance of a standard SOP class: highdicom copies the patient and study
    modules from the first evidence item by looking up that class's IOD, and fails on a
    vendor-private class."""
    return sorted(sources, key=lambda ds: not pydicom.uid.UID(str(ds.SOPClassUID)).keyword)


def _local_time(now: dt.datetime, source: pydicom.Dataset) -> tuple[dt.datetime, str | None]:
    """``now`` in the source's time zone when it declares one (so that the SR's dates read like
    the study's), otherwise in the server's local zone, which is what DICOM dates mean by default."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    offset = source.get("TimezoneOffsetFromUTC")
    if offset:
        match = re.fullmatch(r"([+-])(\d{2})(\d{2})", str(offset).strip())
        if match:
            sign = 1 if match.group(1) == "+" else -1
            delta = dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
            return now.astimezone(dt.timezone(sign * delta)), str(offset).strip()
    return now.astimezone(), None


def _text(name: Code, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(
        name=name, value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )


def _section(heading: Code, items: Sequence[hd.sr.ContentItem]) -> hd.sr.ContainerContentItem:
    container = hd.sr.ContainerContentItem(
        name=heading, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    container.ContentSequence = hd.sr.ContentSequence(list(items))
    return container


def _coded(label: CodedLabel) -> hd.sr.CodeContentItem:
    return hd.sr.CodeContentItem(
        name=codes.FINDING,
        value=hd.sr.CodedConcept(
            value=label.value, scheme_designator=label.scheme, meaning=_lo(label.meaning)
        ),
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )


def _image(sop_class_uid: str, sop_instance_uid: str) -> hd.sr.ImageContentItem:
    return hd.sr.ImageContentItem(
        name=codes.KEY_SOURCE_IMAGE,
        referenced_sop_class_uid=sop_class_uid,
        referenced_sop_instance_uid=sop_instance_uid,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )


def build_content(
    *,
    findings: str,
    impression: str,
    model_name: str,
    model_revision: str | None,
    indication: str | None = None,
    labels: Sequence[CodedLabel] = (),
    key_images: Sequence[tuple[str, str]] = (),
) -> hd.sr.ContainerContentItem:
    """The TID 2000 content tree: language, device observer, clinical information, findings
    (the draft notice first, then the text, the coded labels and the key images as
    ``(sop_class_uid, sop_instance_uid)``), impressions."""
    observer_name = model_name if not model_revision else f"{model_name} ({model_revision})"
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept.from_code(codes.OBSERVER_TYPE_DEVICE),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_observer_uid(model_name, model_revision),
            name=observer_name,
            manufacturer_name=codes.MANUFACTURER,
            model_name=model_name,
        ),
    )
    language = hd.sr.LanguageOfContentItemAndDescendants(
        language=hd.sr.CodedConcept.from_code(codes.LANGUAGE_EN_US)
    )

    items: list[hd.sr.ContentItem] = [*language, *observer]
    if indication and indication.strip():
        items.append(
            _section(
                codes.CLINICAL_INFORMATION,
                [_text(codes.INDICATIONS_FOR_PROCEDURE, p) for p in _paragraphs(indication)],
            )
        )
    finding_items: list[hd.sr.ContentItem] = [_text(codes.FINDING, codes.DRAFT_NOTICE)]
    finding_items += [_text(codes.FINDING, p) for p in _paragraphs(findings)]
    finding_items += [_coded(label) for label in labels]
    finding_items += [_image(sop_class, sop_instance) for sop_class, sop_instance in key_images]
    items.append(_section(codes.FINDINGS, finding_items))
    impression_items = [_text(codes.IMPRESSION, p) for p in _paragraphs(impression)]
    if impression_items:
        items.append(_section(codes.IMPRESSIONS, impression_items))

    root = hd.sr.ContainerContentItem(
        name=codes.DIAGNOSTIC_IMAGING_REPORT,
        template_id=codes.TID_DIAGNOSTIC_IMAGING_REPORT,
    )
    root.ContentSequence = hd.sr.ContentSequence(items)
    return root


def _labels(labels: Sequence[CodedLabel | Sequence[str]] | None) -> list[CodedLabel]:
    """Accept labels as :class:`CodedLabel` or as ``(code, scheme, meaning)`` (as JSON stores them)."""
    if labels is None:
        return []
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError('Argument "labels" must be a sequence of (code, scheme, meaning).')
    out: list[CodedLabel] = []
    for index, label in enumerate(labels):
        if isinstance(label, CodedLabel):
            out.append(label)
            continue
        if isinstance(label, (str, bytes)) or not isinstance(label, Sequence) or len(label) != 3:
            raise ValueError(f'Item {index} of argument "labels" is not (code, scheme, meaning).')
        try:
            out.append(CodedLabel(*(str(part) for part in label)))
        except ValueError:
            raise ValueError(f'Item {index} of argument "labels" is not a valid coded label.') from None
    return out


def _key_images(
    sources: Sequence[pydicom.Dataset], key_image_uids: Sequence[str] | None
) -> list[tuple[str, str]]:
    """``(sop_class_uid, sop_instance_uid)`` of each key image that is one of the sources, in the
    given order; UIDs of instances we do not hold are left out (the SR may reference only its
    evidence)."""
    if not key_image_uids:
        return []
    if isinstance(key_image_uids, str) or not isinstance(key_image_uids, Sequence):
        raise TypeError('Argument "key_image_uids" must be a sequence of UIDs.')
    classes = {str(ds.SOPInstanceUID): str(ds.SOPClassUID) for ds in sources}
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for uid in key_image_uids:
        uid = str(uid)
        if uid in classes and uid not in seen:
            seen.add(uid)
            out.append((classes[uid], uid))
    if len(out) < len(key_image_uids):
        logger.debug("%d key image UIDs are not among the sources", len(key_image_uids) - len(out))
    return out


def _request_item(study_uid: str, request: RequestedProcedure, header: pydicom.Dataset) -> pydicom.Dataset:
    """One Referenced Request Sequence item (PS3.3 C.17.2): type 2 attributes present, empty when unknown."""
    item = pydicom.Dataset()
    item.StudyInstanceUID = study_uid
    item.ReferencedStudySequence = []
    item.AccessionNumber = _sh(request.accession_number or header.get("AccessionNumber") or "")
    item.PlacerOrderNumberImagingServiceRequest = _lo(request.placer_order_number or "")
    item.FillerOrderNumberImagingServiceRequest = _lo(request.filler_order_number or "")
    item.RequestedProcedureID = _sh(request.requested_procedure_id or "")
    description = (
        request.description or header.get("RequestedProcedureDescription") or header.get("StudyDescription")
    )
    item.RequestedProcedureDescription = _lo(str(description)) if description else ""
    if request.code is not None:
        item.RequestedProcedureCodeSequence = [
            hd.sr.CodedConcept(
                value=request.code.value,
                scheme_designator=request.code.scheme,
                meaning=_lo(request.code.meaning),
            )
        ]
    else:
        item.RequestedProcedureCodeSequence = []
    if request.reason and request.reason.strip():
        item.ReasonForTheRequestedProcedure = _lo(request.reason)
    return item


def _sh(value: str) -> str:
    """Fit a value into an SH element (16 characters)."""
    return _lo(value)[:16].rstrip()


def _check_predecessors(predecessors: Sequence[pydicom.Dataset] | None) -> list[pydicom.Dataset]:
    if not predecessors:
        return []
    out = []
    for index, ds in enumerate(predecessors):
        if not isinstance(ds, pydicom.Dataset):
            raise TypeError(f'Item {index} of argument "predecessors" is not a pydicom Dataset.')
        missing = [kw for kw in _REQUIRED_SOURCE_KEYWORDS if not ds.get(kw)]
        if missing:
            raise ValueError(f'Item {index} of argument "predecessors" lacks {", ".join(missing)}.')
        out.append(ds)
    return out


def build_draft_sr(
    sources: Sequence[pydicom.Dataset],
    *,
    findings: str,
    impression: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    model_name: str,
    model_revision: str | None,
    software_version: str,
    indication: str | None = None,
    now: dt.datetime | None = None,
    sr_class: SrClass = "enhanced",
    series_number: int = 9901,
    key_image_uids: Sequence[str] | None = None,
    labels: Sequence[CodedLabel | Sequence[str]] | None = None,
    requested_procedure: RequestedProcedure | None = None,
    predecessors: Sequence[pydicom.Dataset] | None = None,
) -> pydicom.Dataset:
    """Build the draft SR for the study whose received instances (headers) are ``sources``.

    ``key_image_uids`` are the SOP Instance UIDs of the images the model was shown (IMAGE items
    in Findings); ``labels`` coded abnormalities; ``requested_procedure`` fills the Referenced
    Request Sequence (also written, from the source's accession number, when it is None and the
    source has one); ``predecessors`` are the headers of the SRs this one replaces (a re-draft).

    Raises ``TypeError``/``ValueError`` naming the argument; messages carry no patient data.
    """
    study_uid = _check_sources(sources)
    if not isinstance(findings, str) or not isinstance(impression, str):
        raise TypeError('Arguments "findings" and "impression" must be strings.')
    if not _paragraphs(findings) and not _paragraphs(impression):
        raise ValueError('Arguments "findings" and "impression" are both empty.')
    if not model_name or not model_name.strip():
        raise ValueError('Argument "model_name" must not be empty.')
    if not software_version or not software_version.strip():
        raise ValueError('Argument "software_version" must not be empty.')
    if sr_class not in SR_CLASSES:
        raise ValueError('Argument "sr_class" must be "enhanced", "comprehensive" or "basic".')
    for name, uid in (("series_instance_uid", series_instance_uid), ("sop_instance_uid", sop_instance_uid)):
        if not isinstance(uid, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid) or len(uid) > 64:
            raise ValueError(f'Argument "{name}" is not a valid DICOM UID.')
    if requested_procedure is not None and not isinstance(requested_procedure, RequestedProcedure):
        raise TypeError('Argument "requested_procedure" must be a RequestedProcedure or None.')
    coded = _labels(labels)
    previous = _check_predecessors(predecessors)

    ordered = _known_class_first(sources)
    header = _header_source(ordered[0])
    evidence = _unique_instances([header, *ordered[1:]])
    local_now, tz_offset = _local_time(now or dt.datetime.now(dt.UTC), header)

    content = build_content(
        findings=findings,
        impression=impression,
        model_name=model_name,
        model_revision=model_revision,
        indication=indication,
        labels=coded,
        key_images=_key_images(evidence, key_image_uids),
    )
    institution = header.get("InstitutionName") or None
    department = header.get("InstitutionalDepartmentName") or None
    if requested_procedure is None and header.get("AccessionNumber"):
        requested_procedure = RequestedProcedure()
    requests = [_request_item(study_uid, requested_procedure, header)] if requested_procedure else None
    versions = [_lo(f"RadAssist {software_version}")]
    if model_revision:
        versions.append(_lo(f"model {model_revision}"))
    equipment = hd.ContributingEquipment(
        manufacturer=codes.MANUFACTURER,
        purpose_of_reference=codes.PROCESSING_EQUIPMENT,
        manufacturer_model_name=_lo(model_name),
        software_versions=versions,
        contribution_datetime=local_now.replace(microsecond=0, tzinfo=None),
        contribution_description="AI draft report, not verified",
    )
    sr_type = _SR_TYPES[sr_class]
    try:
        with warnings.catch_warnings():
            # highdicom warns about single-component names quoting the name itself (patient data).
            warnings.filterwarnings("ignore", message=r"The string .* person name", category=UserWarning)
            sr = sr_type(
                evidence=evidence,
                content=content,
                series_instance_uid=series_instance_uid,
                series_number=series_number,
                sop_instance_uid=sop_instance_uid,
                instance_number=1,
                manufacturer=codes.MANUFACTURER,
                is_complete=False,
                is_final=False,
                is_verified=False,
                institution_name=_lo(str(institution)) if institution else None,
                institutional_department_name=_lo(str(department)) if department else None,
                requested_procedures=requests,
                previous_versions=previous or None,
                contributing_equipment=[equipment],
                specific_character_set="ISO_IR 192",
                series_description=codes.SERIES_DESCRIPTION,
                manufacturer_model_name=_lo(model_name),
                software_versions=_lo(software_version),
                content_date=local_now.date(),
                content_time=local_now.time().replace(microsecond=0),
            )
    except (AttributeError, KeyError) as exc:
        # highdicom's messages may quote attribute values; keep only the kind of problem.
        raise ValueError(
            f'Argument "sources" cannot be used as SR evidence ({type(exc).__name__}).'
        ) from None

    stamp = local_now.replace(microsecond=0)
    sr.InstanceCreationDate = DA(stamp.date())
    sr.InstanceCreationTime = TM(stamp.time())
    sr.SeriesDate = DA(stamp.date())
    sr.SeriesTime = TM(stamp.time())
    if tz_offset is not None:
        sr.TimezoneOffsetFromUTC = tz_offset
    # The study's own descriptive attributes, when the source has them.
    for keyword in ("StudyDescription", "ReferringPhysicianName", "IssuerOfPatientID"):
        if keyword in header and keyword not in sr:
            sr[keyword] = copy.deepcopy(header[keyword])
    logger.debug(
        "built draft SR class=%s sop_instance_uid=%s study_instance_uid=%s",
        sr_class,
        sop_instance_uid,
        study_uid,
    )
    return sr
