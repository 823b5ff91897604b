"""The few header fields we persist, read in one place: the only PHI-tag reader of intake.

Everything the rest of intake needs comes out of here as an :class:`InstanceHeader`; the dataset
itself goes no further.  The accession number is carried so the recorder can hash it, and the
patient's identity (ID, issuer, name, birth date) only as a digest; neither is stored or logged as is.

Identifying UIDs are required and must be valid UIDs by PS3.5 9.1, exactly
(:func:`radassist.identifiers.uid_value`); descriptive fields are best-effort: a malformed Series
Number must not cost the sender its study.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, TypeVar

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from radassist.errors import RejectedInput
from radassist.identifiers import uid_value
from radassist.intake.patient import UNKNOWN_PATIENT, PatientIdentity
from radassist.intake.structure import as_transfer_syntax, check_complete

T = TypeVar("T")

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
    patient_digest: str = UNKNOWN_PATIENT
    """Who the instance names as the patient, as :meth:`PatientIdentity.digest` (the values are not kept)."""

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
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "InstanceNumber",
)
_TAG_BY_KEYWORD = {keyword: int(tag_for_keyword(keyword) or 0) for keyword in _HEADER_KEYWORDS}
_HEADER_TAG_SET = frozenset(_TAG_BY_KEYWORD.values())
_DICTIONARY_VRS = {tag: dictionary_VR(tag) for tag in _HEADER_TAG_SET}
_CHARSET_TAG = _TAG_BY_KEYWORD["SpecificCharacterSet"]
_HEADER_KEYWORD_SET = frozenset(_HEADER_KEYWORDS) | {"TransferSyntaxUID"}  # the file meta's, set by us


def parse_header(encoded: bytes, transfer_syntax_uid: str) -> InstanceHeader:
    """The header of a received Part 10 stream whose data set is encoded in ``transfer_syntax_uid``,
    after checking that the data set is whole (:func:`check_complete`, which raises
    ``dicom.truncated`` or ``dicom.invalid_vr``).

    The completeness check walks every top-level element anyway; it hands over the few read here,
    and plain ASCII values (UIDs, codes, numbers, dates, and descriptions in a single-byte or UTF-8
    character set) are decoded directly: pydicom's data set and value machinery took most of a small
    instance's Python time in the listener.  Anything else (several values, another character set,
    a VR other than the dictionary's) is converted by pydicom as before.  A deflated data set goes
    through ``dcmread``, which inflates it.  Malformed bytes raise what pydicom raises;
    :func:`read_header`'s errors are as documented there.
    """
    ts = as_transfer_syntax(transfer_syntax_uid)
    if not ts.is_transfer_syntax or ts.is_deflated:
        return read_header(dcmread(BytesIO(encoded), stop_before_pixels=True))  # the inflater checks it
    elements = check_complete(encoded, transfer_syntax_uid, collect=_HEADER_TAG_SET)
    return _header(_ReceivedElements(encoded, elements), str(ts))


_SLOW = object()
"""A value :class:`_ReceivedElements` leaves to pydicom."""
_DIRECT_ASCII_VRS = frozenset({"UI", "CS", "AS", "DA", "IS"})
_DIRECT_TEXT_VRS = frozenset({"LO", "SH", "PN"})
_ASCII_COMPATIBLE_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192"})
"""Character sets in which ASCII bytes mean ASCII characters and need no escape sequences."""


class _ReceivedElements:
    """The header's elements as the completeness walk found them, read like a pydicom data set."""

    def __init__(self, encoded: bytes, elements: dict[int, RawDataElement]) -> None:
        self._elements = {
            tag: raw._replace(value=encoded[raw.value_tell : raw.value_tell + raw.length])
            if raw.value is None and raw.length
            else raw
            for tag, raw in elements.items()
        }
        self._dataset: _DatasetValues | None = None
        charset = self._elements.get(_CHARSET_TAG)
        charset_value = charset.value if charset is not None else b""
        self._ascii_text = (
            isinstance(charset_value, bytes)
            and charset_value.decode("latin-1").strip("\x00 ") in _ASCII_COMPATIBLE_CHARSETS
        )

    def value(self, keyword: str) -> Any:
        """What ``dataset[keyword].value`` gives, or None when the element is absent."""
        raw = self._elements.get(_TAG_BY_KEYWORD[keyword])
        if raw is None:
            return None
        value = self._direct(raw)
        if value is not _SLOW:
            return value
        if self._dataset is None:
            self._dataset = _DatasetValues(Dataset({BaseTag(tag): raw for tag, raw in self._elements.items()}))
        return self._dataset.value(keyword)

    def raw_text(self, keyword: str) -> str | None:
        """The element's value as sent (padding included), or None when absent."""
        raw = self._elements.get(_TAG_BY_KEYWORD[keyword])
        if raw is None:
            return None
        return raw.value.decode("latin-1") if isinstance(raw.value, bytes) else None

    def _direct(self, raw: RawDataElement) -> Any:
        vr = raw.VR if raw.VR is not None else _DICTIONARY_VRS.get(raw.tag)
        value = raw.value
        if not isinstance(value, bytes) or b"\\" in value or b"\x1b" in value:
            return _SLOW
        if vr not in _DIRECT_ASCII_VRS and not (vr in _DIRECT_TEXT_VRS and self._ascii_text):
            return _SLOW
        try:
            text = value.decode("ascii").strip("\x00 ")
        except UnicodeDecodeError:
            return _SLOW
        if vr == "IS" and text:
            return int(text) if text.isdigit() else _SLOW
        return text


class _DatasetValues:
    """A pydicom data set, read by keyword like :class:`_ReceivedElements`."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset

    def value(self, keyword: str) -> Any:
        return self._dataset[keyword].value if keyword in self._dataset else None

    def raw_text(self, keyword: str) -> str | None:
        """The element's value as read, before pydicom's conversion (which strips whitespace) when it
        has not happened yet; None when absent or already converted."""
        if keyword not in self._dataset:
            return None
        element = self._dataset.get_item(keyword)
        return element.value.decode("latin-1") if isinstance(element.value, bytes) else None


_Values = _ReceivedElements | _DatasetValues


def _raw(source: _Values, keyword: str) -> Any:
    """The element's value, or None when absent; a value pydicom cannot convert counts as absent."""
    if keyword not in _HEADER_KEYWORD_SET:
        raise AssertionError(f"{keyword} is read from the header but missing from _HEADER_KEYWORDS")
    try:
        return source.value(keyword)
    except Exception:  # noqa: BLE001 - a malformed value; the message may echo it, so drop it
        return None


def _uid(dataset: _Values, keyword: str) -> str:
    """The UID exactly as sent (pydicom's conversion would strip a newline and hide it)."""
    value = dataset.raw_text(keyword) if keyword in _TAG_BY_KEYWORD else None
    if value is None:
        value = _raw(dataset, keyword)
    if value is None or not str(value).strip("\x00 "):
        raise RejectedInput(f"the data set has no {keyword}", code="dicom.missing_uid")
    try:
        return uid_value(str(value))
    except ValueError:
        raise RejectedInput(f"the data set's {keyword} is not a valid UID", code="dicom.invalid_uid") from None


def _optional(dataset: _Values, keyword: str, convert: Callable[[Any], T]) -> T | None:
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


def _identity_text(source: _Values, keyword: str) -> str:
    """A patient identity value as text ("" when absent): compared as a hash, never stored."""
    value = _raw(source, keyword)
    return "" if value is None else str(value)


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
    return _header(_DatasetValues(dataset), _uid(_DatasetValues(file_meta), "TransferSyntaxUID"))


def _header(source: _Values, transfer_syntax_uid: str) -> InstanceHeader:
    return InstanceHeader(
        study_instance_uid=_uid(source, "StudyInstanceUID"),
        series_instance_uid=_uid(source, "SeriesInstanceUID"),
        sop_instance_uid=_uid(source, "SOPInstanceUID"),
        sop_class_uid=_uid(source, "SOPClassUID"),
        transfer_syntax_uid=transfer_syntax_uid,
        modality=_optional(source, "Modality", _text),
        study_description=_optional(source, "StudyDescription", _text),
        series_description=_optional(source, "SeriesDescription", _text),
        series_number=_optional(source, "SeriesNumber", _int),
        instance_number=_optional(source, "InstanceNumber", _int),
        accession_number=_optional(source, "AccessionNumber", _text),
        patient_age=_patient_age(source),
        patient_sex=_optional(source, "PatientSex", _sex),
        patient_digest=PatientIdentity(
            patient_id=_identity_text(source, "PatientID"),
            issuer=_identity_text(source, "IssuerOfPatientID"),
            name=_identity_text(source, "PatientName"),
            birth_date=_identity_text(source, "PatientBirthDate"),
        ).digest(),
    )


_AGE_RE = re.compile(r"^\d{3}[DWMY]$")
_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})")


def _sex(value: Any) -> str | None:
    text = str(value).strip("\x00 ").upper()
    return text if text in {"F", "M", "O"} else None


def _patient_age(dataset: _Values) -> str | None:
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
