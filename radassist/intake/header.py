"""The few header fields we persist, read in one place: the only PHI-tag reader of intake.

Everything the rest of intake needs comes out of here as an :class:`InstanceHeader`; the dataset
itself (names, IDs, birth dates) goes no further.  The accession number is carried so the
recorder can hash it; it is never stored or logged as is.

Identifying UIDs are required and must be valid (1-64 characters, digits and dots); descriptive
fields are best-effort: a malformed Series Number must not cost the sender its study.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, TypeVar

from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from radassist.errors import RejectedInput
from radassist.intake.structure import dataset_offset

T = TypeVar("T")

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class InstanceHeader:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str | None
    study_description: str | None
    series_description: str | None
    series_number: int | None
    instance_number: int | None
    accession_number: str | None
    patient_age: str | None = None
    """DICOM AS (``064Y``), as sent or computed from birth and study dates: for the worklist."""
    patient_sex: str | None = None
    """``F``, ``M`` or ``O``; anything else is dropped."""

    def __repr__(self) -> str:
        # Never show the accession number or descriptions, even in a traceback.
        return "<InstanceHeader>"


#: Every element :func:`read_header` reads, and all that :func:`parse_header` decodes: ``_raw``
#: refuses any other keyword, so a field added to the header without its keyword here fails at once.
_HEADER_KEYWORDS = (
    "SpecificCharacterSet",  # how the text values below are decoded
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "AccessionNumber",
    "Modality",
    "StudyDescription",
    "SeriesDescription",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "InstanceNumber",
)
_HEADER_TAGS: list[BaseTag | int] = [int(tag_for_keyword(k) or 0) for k in _HEADER_KEYWORDS]
_HEADER_KEYWORD_SET = frozenset(_HEADER_KEYWORDS) | {"TransferSyntaxUID"}  # the file meta's, set by us
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})


def _at_pixels(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return tag in _PIXEL_TAGS


def parse_header(encoded: bytes, transfer_syntax_uid: str) -> InstanceHeader:
    """The header of a Part 10 stream whose data set is encoded in ``transfer_syntax_uid``.

    Only the elements read here are decoded, straight from the data set after the file meta:
    a quarter of the time ``dcmread(stop_before_pixels=True)`` takes, which decodes every
    element before the pixels.  A deflated data set goes through ``dcmread``, which inflates it.
    Malformed bytes raise what pydicom raises; :func:`read_header`'s errors are as documented there.
    """
    ts = UID(transfer_syntax_uid)
    if not ts.is_transfer_syntax or ts.is_deflated:
        return read_header(dcmread(BytesIO(encoded), stop_before_pixels=True))
    stream = BytesIO(encoded)
    stream.seek(dataset_offset(encoded))
    dataset = read_dataset(
        stream, ts.is_implicit_VR, ts.is_little_endian, stop_when=_at_pixels, specific_tags=list(_HEADER_TAGS)
    )
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ts
    return read_header(dataset)


def _raw(dataset: Dataset, keyword: str) -> Any:
    """The element's value, or None when absent; a value pydicom cannot convert counts as absent."""
    if keyword not in _HEADER_KEYWORD_SET:
        raise AssertionError(f"{keyword} is read from the header but missing from _HEADER_KEYWORDS")
    try:
        if keyword not in dataset:
            return None
        return dataset[keyword].value
    except Exception:  # noqa: BLE001 - a malformed value; the message may echo it, so drop it
        return None


def _uid(dataset: Dataset, keyword: str) -> str:
    value = _raw(dataset, keyword)
    if value is None or not str(value).strip("\x00 "):
        raise RejectedInput(f"the data set has no {keyword}", code="dicom.missing_uid")
    text = str(value).strip("\x00 ")
    if len(text) > 64 or not _UID_RE.match(text):
        raise RejectedInput(f"the data set's {keyword} is not a valid UID", code="dicom.invalid_uid")
    return text


def _optional(dataset: Dataset, keyword: str, convert: Callable[[Any], T]) -> T | None:
    value = _raw(dataset, keyword)
    if value is None or value == "":
        return None
    try:
        return convert(value)
    except Exception:  # noqa: BLE001 - descriptive fields are best effort
        return None


def _text(value: Any) -> str | None:
    text = str(value).strip("\x00 ")
    return text or None


def _int(value: Any) -> int | None:
    number = int(value)
    return number if -_INT32_MAX <= number <= _INT32_MAX else None


def read_header(dataset: Dataset) -> InstanceHeader:
    """Pull the persisted fields out of a received dataset (pixel data need not be loaded).

    The transfer syntax comes from the file meta (``dataset.file_meta``), which pynetdicom builds
    from the presentation context.  Raises :class:`RejectedInput` with code ``dicom.missing_uid``
    or ``dicom.invalid_uid`` when an identifying UID is absent or malformed.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError("dataset must be a pydicom Dataset")
    file_meta = getattr(dataset, "file_meta", None)
    if not isinstance(file_meta, Dataset):
        raise RejectedInput("the data set has no file meta (transfer syntax)", code="dicom.missing_uid")
    return InstanceHeader(
        study_instance_uid=_uid(dataset, "StudyInstanceUID"),
        series_instance_uid=_uid(dataset, "SeriesInstanceUID"),
        sop_instance_uid=_uid(dataset, "SOPInstanceUID"),
        sop_class_uid=_uid(dataset, "SOPClassUID"),
        transfer_syntax_uid=_uid(file_meta, "TransferSyntaxUID"),
        modality=_optional(dataset, "Modality", _text),
        study_description=_optional(dataset, "StudyDescription", _text),
        series_description=_optional(dataset, "SeriesDescription", _text),
        series_number=_optional(dataset, "SeriesNumber", _int),
        instance_number=_optional(dataset, "InstanceNumber", _int),
        accession_number=_optional(dataset, "AccessionNumber", _text),
        patient_age=_patient_age(dataset),
        patient_sex=_optional(dataset, "PatientSex", _sex),
    )


_AGE_RE = re.compile(r"^\d{3}[DWMY]$")
_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})")


def _sex(value: Any) -> str | None:
    text = str(value).strip("\x00 ").upper()
    return text if text in {"F", "M", "O"} else None


def _patient_age(dataset: Dataset) -> str | None:
    """PatientAge when it is a valid AS; else the age in years on the study date, from the birth date.

    The birth date is read here only to compute the age and is then dropped: it is never stored.
    """
    sent = _optional(dataset, "PatientAge", _text)
    if sent is not None and _AGE_RE.match(sent.upper()):
        return sent.upper()
    born = _DATE_RE.match(str(_raw(dataset, "PatientBirthDate") or ""))
    seen = _DATE_RE.match(str(_raw(dataset, "StudyDate") or ""))
    if born is None or seen is None:
        return None
    (by, bm, bd), (sy, sm, sd) = (map(int, born.groups()), map(int, seen.groups()))
    years = sy - by - (1 if (sm, sd) < (bm, bd) else 0)
    return f"{years:03d}Y" if 0 <= years <= 999 else None
