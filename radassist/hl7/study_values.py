"""The values of a study's DICOM header that our ORU^R01 carries, read once and as plain text.

Multi-valued elements never reach a message as a Python list: an identifier (PatientID,
IssuerOfPatientID, AccessionNumber) that pydicom split at a backslash is put back together
whole, because a RIS matches the identifier as its sender wrote it; a multi-valued PatientName
gives one name per value (PID-5 repetitions); descriptions and codes become one text joined by
:data:`radassist.text.JOIN`.  Dates are kept only when they are exactly what HL7 expects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom import config
from pydicom.valuerep import PersonName

from radassist.text import joined

NameParts = tuple[str, str, str, str, str]
"""(family, given, middle, suffix, prefix): XPN.1-XPN.5."""

# DICOM Patient's Sex -> HL7 table 0001; anything else is U (unknown).
SEX = {"M": "M", "F": "F", "O": "O"}


@dataclass(frozen=True)
class Procedure:
    """What was done, for OBR-4: (code, text, coding system)."""

    code: str = ""
    text: str = ""
    system: str = ""


@dataclass(frozen=True)
class StudyValues:
    """The header values an ORU uses; contains patient data, never log it."""

    patient_id: str = ""
    issuer: str = ""
    names: tuple[NameParts, ...] = ()
    birth_date: str = ""
    sex: str = "U"
    accession: str = ""
    procedure: Procedure = Procedure()
    study_datetime: str = ""

    def __repr__(self) -> str:
        return "<StudyValues>"


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, PersonName)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def whole(value: Any) -> str:
    """An identifier as its sender wrote it: values pydicom split at a backslash joined back."""
    return "\\".join(_text(v) for v in _values(value)).strip()


def person_names(value: Any) -> list[NameParts]:
    """Each non-empty name of a (possibly multi-valued) PatientName, as XPN.1-5 parts."""
    out: list[NameParts] = []
    for item in _values(value):
        name = (
            item if isinstance(item, PersonName) else PersonName(_text(item), validation_mode=config.IGNORE)
        )
        parts = tuple(
            str(p or "").strip()
            for p in (name.family_name, name.given_name, name.middle_name, name.name_suffix, name.name_prefix)
        )
        if any(parts):
            out.append((parts[0], parts[1], parts[2], parts[3], parts[4]))
    return out


def _offset(source: pydicom.Dataset) -> str:
    """The study's TimezoneOffsetFromUTC (``-0400``) when it declares a valid one, else ""."""
    offset = whole(source.get("TimezoneOffsetFromUTC"))
    return offset if re.fullmatch(r"[+-](0\d|1[0-4])[0-5]\d", offset) else ""


def study_datetime(source: pydicom.Dataset) -> str:
    """StudyDate + StudyTime as an HL7 DTM (fractions cut to 4 digits) with the study's time zone
    offset when it declares one, the date alone, or ""."""
    date = whole(source.get("StudyDate"))
    if not re.fullmatch(r"\d{8}", date):
        return ""
    match = re.fullmatch(r"(\d{2,6})(?:\.(\d{1,6}))?", whole(source.get("StudyTime")))
    if not match:
        return date
    hours = match.group(1)
    if len(hours) % 2:
        hours = hours[:-1]
    value = date + hours
    if match.group(2) and len(hours) == 6:
        value += "." + match.group(2)[:4]
    return value + _offset(source)


def procedure(source: pydicom.Dataset) -> Procedure:
    """The first coded procedure of the header, else its descriptions, else the modality."""
    for keyword in ("RequestedProcedureCodeSequence", "ProcedureCodeSequence"):
        items = source.get(keyword)
        if items:
            item = items[0]
            code, meaning = joined(item.get("CodeValue")), joined(item.get("CodeMeaning"))
            if code and meaning:
                return Procedure(code, meaning, joined(item.get("CodingSchemeDesignator")) or "")
    for keyword in ("StudyDescription", "RequestedProcedureDescription"):
        text = joined(source.get(keyword))
        if text:
            return Procedure(text=text)
    modality = joined(source.get("Modality"))
    return Procedure(text=f"{modality} imaging study" if modality else "Imaging study")


def read_study(source: pydicom.Dataset) -> StudyValues:
    """The ORU's values from one header of the study."""
    birth = whole(source.get("PatientBirthDate"))
    return StudyValues(
        patient_id=whole(source.get("PatientID")),
        issuer=whole(source.get("IssuerOfPatientID")),
        names=tuple(person_names(source.get("PatientName"))),
        birth_date=birth if re.fullmatch(r"\d{8}", birth) else "",
        sex=SEX.get(whole(source.get("PatientSex")).upper(), "U"),
        accession=whole(source.get("AccessionNumber")),
        procedure=procedure(source),
        study_datetime=study_datetime(source),
    )
