"""What the SR's header takes from the received study: evidence, patient and study attributes,
dates in the study's time zone, the request it answers and the documents it replaces.

The SR joins the source study (same Study Instance UID, patient and study modules copied by
highdicom from the first evidence item).  Checks raise ``TypeError``/``ValueError`` naming the
argument; their messages carry no patient data.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import highdicom as hd
import pydicom

from radassist.sr import codes
from radassist.sr.values import CodedLabel, lo, sh

REQUIRED_SOURCE_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
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


_SINGLE_VALUED: dict[str, Callable[[Any], str]] = {
    "AccessionNumber": sh,
    "StudyID": sh,
    "PatientID": lo,
    "IssuerOfPatientID": lo,
    "StudyDescription": lo,
    "InstitutionName": lo,
    "InstitutionalDepartmentName": lo,
    "RequestedProcedureDescription": lo,
}
"""Text attributes of VM 1 that the SR copies from the first source, and how each is fitted."""


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


class _DropPatientNameWarnings(logging.Filter):
    """Some highdicom versions log a doubtful ``patient_name`` with its value; drop that record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "patient_name" not in str(record.msg)


def install_phi_guard() -> None:
    """Keep highdicom's patient-name warnings (which quote the name) out of the logs."""
    target = logging.getLogger("highdicom.base")
    if not any(isinstance(f, _DropPatientNameWarnings) for f in target.filters):
        target.addFilter(_DropPatientNameWarnings())


def _check_datasets(datasets: Sequence[pydicom.Dataset], argument: str) -> None:
    for index, ds in enumerate(datasets):
        if not isinstance(ds, pydicom.Dataset):
            raise TypeError(f'Item {index} of argument "{argument}" is not a pydicom Dataset.')
        missing = [kw for kw in REQUIRED_SOURCE_KEYWORDS if not ds.get(kw)]
        if missing:
            raise ValueError(f'Item {index} of argument "{argument}" lacks {", ".join(missing)}.')


def check_sources(sources: Sequence[pydicom.Dataset]) -> str:
    """The Study Instance UID all ``sources`` share."""
    if isinstance(sources, pydicom.Dataset) or not isinstance(sources, Sequence):
        raise TypeError('Argument "sources" must be a sequence of pydicom Datasets.')
    if len(sources) == 0:
        raise ValueError('Argument "sources" must contain at least one dataset.')
    _check_datasets(sources, "sources")
    study_uids = {str(ds.StudyInstanceUID) for ds in sources}
    if len(study_uids) > 1:
        raise ValueError('All items of argument "sources" must belong to the same study.')
    return study_uids.pop()


def check_predecessors(predecessors: Sequence[pydicom.Dataset] | None) -> list[pydicom.Dataset]:
    if not predecessors:
        return []
    _check_datasets(predecessors, "predecessors")
    return list(predecessors)


def header_source(first: pydicom.Dataset) -> pydicom.Dataset:
    """A copy of the first source in which the type 2 patient/study attributes highdicom reads exist,
    and the single-valued texts the SR copies from it are single (a sender's backslash joined)."""
    header = copy.deepcopy(first)
    for keyword in _TYPE2_PATIENT_STUDY:
        if keyword not in header:
            setattr(header, keyword, None)
    for keyword, fit in _SINGLE_VALUED.items():
        if keyword in header and header[keyword].VM > 1:
            setattr(header, keyword, fit(header[keyword].value))
    sex = header.get("PatientSex")
    if sex is not None and str(sex) not in ("M", "F", "O"):
        header.PatientSex = None
    return header


def evidence(sources: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The evidence, each instance once; first an instance of a standard SOP class with its type 2
    attributes present: highdicom copies the patient and study modules from the first item by
    looking up that class's IOD, and fails on a vendor-private class."""
    ordered = sorted(sources, key=lambda ds: not pydicom.uid.UID(str(ds.SOPClassUID)).keyword)
    seen: set[str] = set()
    unique: list[pydicom.Dataset] = []
    for ds in [header_source(ordered[0]), *ordered[1:]]:
        uid = str(ds.SOPInstanceUID)
        if uid not in seen:
            seen.add(uid)
            unique.append(ds)
    return unique


def local_time(now: dt.datetime, source: pydicom.Dataset) -> tuple[dt.datetime, str | None]:
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


def request_item(study_uid: str, request: RequestedProcedure, header: pydicom.Dataset) -> pydicom.Dataset:
    """One Referenced Request Sequence item (PS3.3 C.17.2): type 2 attributes present, empty when unknown."""
    item = pydicom.Dataset()
    item.StudyInstanceUID = study_uid
    item.ReferencedStudySequence = []
    item.AccessionNumber = sh(request.accession_number or header.get("AccessionNumber"))
    item.PlacerOrderNumberImagingServiceRequest = lo(request.placer_order_number)
    item.FillerOrderNumberImagingServiceRequest = lo(request.filler_order_number)
    item.RequestedProcedureID = sh(request.requested_procedure_id)
    description = (
        request.description or header.get("RequestedProcedureDescription") or header.get("StudyDescription")
    )
    item.RequestedProcedureDescription = lo(description)
    item.RequestedProcedureCodeSequence = []
    if request.code is not None:
        item.RequestedProcedureCodeSequence = [
            hd.sr.CodedConcept(value=request.code.value, scheme_designator=request.code.scheme,
                               meaning=lo(request.code.meaning))
        ]
    if request.reason and request.reason.strip():
        item.ReasonForTheRequestedProcedure = lo(request.reason)
    return item


def contribution_datetime(local_now: dt.datetime, tz_offset: str | None) -> pydicom.valuerep.DT:
    """When we contributed, as the SR's other dates: in the study's time zone with its offset when it
    declares one, else the server's local time without an offset (what a DICOM time means by default)."""
    stamp = local_now.replace(microsecond=0)
    return pydicom.valuerep.DT(stamp if tz_offset is not None else stamp.replace(tzinfo=None))


def fix_contribution_times(sr: pydicom.Dataset, stamp: pydicom.valuerep.DT) -> None:
    """Every ContributionDateTime the SR's builders wrote (ours, and highdicom's own item, which it
    stamps with the server's naive local time) becomes ``stamp``; the sources' items keep theirs."""
    for item in sr.get("ContributingEquipmentSequence") or ():
        ours = item.get("Manufacturer") == codes.MANUFACTURER or item.get("ManufacturerModelName") == "highdicom"
        if ours and "ContributionDateTime" in item:
            item.ContributionDateTime = stamp


def contributing_equipment(model_name: str, model_revision: str | None, software_version: str,
                           local_now: dt.datetime, tz_offset: str | None = None) -> hd.ContributingEquipment:
    """The model and our version, in ContributingEquipmentSequence."""
    versions = [lo(f"RadAssist {software_version}")]
    if model_revision:
        versions.append(lo(f"model {model_revision}"))
    return hd.ContributingEquipment(
        manufacturer=codes.MANUFACTURER,
        purpose_of_reference=codes.PROCESSING_EQUIPMENT,
        manufacturer_model_name=lo(model_name),
        software_versions=versions,
        contribution_datetime=contribution_datetime(local_now, tz_offset),
        contribution_description="AI draft report, not verified",
    )
