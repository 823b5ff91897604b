"""Build the draft report as a DICOM SR document (TID 2000 "Basic Diagnostic Imaging Report").

The SR joins the source study (same Study Instance UID, patient and study modules copied by
highdicom) in a series of its own.  Every place a human or a PACS might look says that it is an
unverified AI draft: the document flags (PARTIAL / UNVERIFIED / PRELIMINARY), the series
description, the equipment module, the device observer and the first Finding item.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import warnings
from collections.abc import Sequence
from typing import Literal

import highdicom as hd
import pydicom
from pydicom.sr.coding import Code
from pydicom.valuerep import DA, TM

from radassist.sr import codes
from radassist.sr.uids import device_observer_uid

logger = logging.getLogger(__name__)

SrClass = Literal["enhanced", "comprehensive"]

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


def build_content(
    *,
    findings: str,
    impression: str,
    model_name: str,
    model_revision: str | None,
    indication: str | None = None,
) -> hd.sr.ContainerContentItem:
    """The TID 2000 content tree: language, device observer, clinical information, findings,
    impressions."""
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
    finding_items = [_text(codes.FINDING, codes.DRAFT_NOTICE)]
    finding_items += [_text(codes.FINDING, p) for p in _paragraphs(findings)]
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
) -> pydicom.Dataset:
    """Build the draft SR for the study whose received instances (headers) are ``sources``.

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
    if sr_class not in ("enhanced", "comprehensive"):
        raise ValueError('Argument "sr_class" must be "enhanced" or "comprehensive".')
    for name, uid in (("series_instance_uid", series_instance_uid), ("sop_instance_uid", sop_instance_uid)):
        if not isinstance(uid, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid) or len(uid) > 64:
            raise ValueError(f'Argument "{name}" is not a valid DICOM UID.')

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
    )
    institution = header.get("InstitutionName") or None
    department = header.get("InstitutionalDepartmentName") or None
    sr_type = hd.sr.EnhancedSR if sr_class == "enhanced" else hd.sr.ComprehensiveSR
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
    logger.debug("built draft SR sop_instance_uid=%s study_instance_uid=%s", sop_instance_uid, study_uid)
    return sr
