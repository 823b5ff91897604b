"""The DIMSE statuses the listener answers with, named, with their PS3.4 / PS3.7 references.

Storage statuses: PS3.4 Annex B.2.3, Table B.2-1 (C-STORE status).  General statuses: PS3.7
Annex C.  The Cxxx codes are ours within the "Error: Cannot understand" range (C000-CFFF), one
per reason, so the sender's log tells the reasons apart.
"""

from __future__ import annotations

from enum import IntEnum


class StoreStatus(IntEnum):
    SUCCESS = 0x0000
    """PS3.7 C.1.1: the instance is on disk (fsynced) and recorded in the database."""

    OUT_OF_RESOURCES = 0xA700
    """PS3.4 Table B.2-1 "Refused: Out of Resources": disk or database unavailable; the sender should retry."""

    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    """PS3.4 Table B.2-1 "Error: Data Set does not match SOP Class": the data set's SOP Class UID
    differs from the presentation context's abstract syntax."""

    CANNOT_UNDERSTAND = 0xC000
    """PS3.4 Table B.2-1 "Error: Cannot understand": the data set could not be decoded."""

    CANNOT_UNDERSTAND_MISSING_UID = 0xC001
    """In the "Cannot understand" range: a Study/Series/SOP Instance/SOP Class UID is missing or malformed."""

    CANNOT_UNDERSTAND_INSTANCE_CONFLICT = 0xC002
    """In the "Cannot understand" range: the data set's SOP Instance UID differs from the
    command's Affected SOP Instance UID."""

    CANNOT_UNDERSTAND_TRUNCATED = 0xC003
    """In the "Cannot understand" range: an element runs past the end of the data set (truncated
    pixel data, a length larger than what arrived) or the stream is otherwise malformed."""

    PROCESSING_FAILURE = 0x0110
    """PS3.7 C.4.2 "Processing failure": an unexpected error in the listener itself."""


class EchoStatus(IntEnum):
    SUCCESS = 0x0000
    """PS3.7 9.3.5 / C.1.1: C-ECHO answered."""


#: RejectedInput codes raised by intake, mapped to the status the sender gets.
REJECTION_STATUS: dict[str, StoreStatus] = {
    "dicom.missing_uid": StoreStatus.CANNOT_UNDERSTAND_MISSING_UID,
    "dicom.invalid_uid": StoreStatus.CANNOT_UNDERSTAND_MISSING_UID,
    "dicom.undecodable": StoreStatus.CANNOT_UNDERSTAND,
    "dicom.truncated": StoreStatus.CANNOT_UNDERSTAND_TRUNCATED,
    "dicom.invalid_vr": StoreStatus.CANNOT_UNDERSTAND,
    "dicom.sop_class_mismatch": StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    "dicom.instance_conflict": StoreStatus.CANNOT_UNDERSTAND_INSTANCE_CONFLICT,
}
