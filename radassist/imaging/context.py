"""The clinical context the model is told about: what was imaged, and of whom in general terms.

This is the only place that turns header fields into words for the prompt.  It keeps age and sex
(they change what is normal on an image) and never keeps a name, an ID or a birth date: the
birth date is used only to compute an age and is then dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

# Objects that describe images rather than being images; their Modality says nothing about the study.
NON_IMAGE_MODALITIES = frozenset(
    {"SR", "PR", "KO", "SEG", "REG", "RTSTRUCT", "RTPLAN", "RTRECORD", "DOC", "FID"}
)

_AGE_UNITS = {"Y": "year", "M": "month", "W": "week", "D": "day"}
_SEX = {"M": "male", "F": "female", "O": "other"}
_INDICATION_KEYWORDS = (
    "ReasonForRequestedProcedure",
    "ReasonForTheRequestedProcedure",
    "RequestedProcedureDescription",
    "AdmittingDiagnosesDescription",
)


@dataclass(frozen=True)
class ClinicalContext:
    """What the prompt may say about the study; every field is optional."""

    modality: str | None = None
    body_part: str | None = None
    study_description: str | None = None
    series_description: str | None = None
    age: str | None = None
    sex: str | None = None
    indication: str | None = None


def _text(ds: Dataset, keyword: str) -> str | None:
    """A header value as clean text, or None when absent, empty or unreadable."""
    try:
        value: Any = ds.get(keyword)
    except Exception:  # noqa: BLE001 -- a malformed element must not stop the job; the field is just unknown
        return None
    if value is None:
        return None
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        value = "; ".join(str(v) for v in value if str(v).strip())
    text = " ".join(str(value).split())
    return text or None


def _first(datasets: Iterable[Dataset], keyword: str) -> str | None:
    for ds in datasets:
        value = _text(ds, keyword)
        if value:
            return value
    return None


def format_age(value: str | None) -> str | None:
    """``"064Y"`` -> ``"64 years"``; None for anything that is not a DICOM AS value."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d{1,3})\s*([YMWD])\s*", value.upper())
    if not match:
        return None
    number, unit = int(match.group(1)), _AGE_UNITS[match.group(2)]
    return f"{number} {unit}{'' if number == 1 else 's'}"


def _parse_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def age_from_dates(birth: str | None, on: str | None) -> str | None:
    """The age on the study date, in years (months under two years); None if either date is bad."""
    born, seen = _parse_date(birth), _parse_date(on)
    if born is None or seen is None or seen < born:
        return None
    months = (seen.year - born.year) * 12 + (seen.month - born.month) - (1 if seen.day < born.day else 0)
    if months < 1:
        days = (seen - born).days
        return f"{days} day{'' if days == 1 else 's'}"
    if months < 24:
        return f"{months} month{'' if months == 1 else 's'}"
    years = months // 12
    return f"{years} years"


def _modality(datasets: list[Dataset]) -> str | None:
    counts = Counter(
        m for m in (_text(ds, "Modality") for ds in datasets) if m and m.upper() not in NON_IMAGE_MODALITIES
    )
    if not counts:
        return None
    return counts.most_common(1)[0][0].upper()


def _indication(datasets: list[Dataset]) -> str | None:
    for keyword in _INDICATION_KEYWORDS:
        value = _first(datasets, keyword)
        if value:
            return value
        # Modalities often copy the order's attributes into RequestAttributesSequence.
        for ds in datasets:
            for item in ds.get("RequestAttributesSequence", None) or ():
                value = _text(item, keyword)
                if value:
                    return value
    return None


def clinical_context(datasets: Iterable[Dataset]) -> ClinicalContext:
    """Collect the context from a study's headers, taking the first non-empty value of each field."""
    datasets = list(datasets)
    body_part = _first(datasets, "BodyPartExamined")
    age = format_age(_first(datasets, "PatientAge"))
    if age is None:
        study_date = (
            _first(datasets, "StudyDate")
            or _first(datasets, "SeriesDate")
            or _first(datasets, "AcquisitionDate")
        )
        age = age_from_dates(_first(datasets, "PatientBirthDate"), study_date)
    sex_code = (_first(datasets, "PatientSex") or "").upper()
    return ClinicalContext(
        modality=_modality(datasets),
        body_part=body_part.replace("_", " ").lower() if body_part else None,
        study_description=_first(datasets, "StudyDescription"),
        age=age,
        sex=_SEX.get(sex_code),
        indication=_indication(datasets),
    )
