"""The DIMSE statuses the listener answers with, named, with their PS3.4 / PS3.7 references.

Storage statuses: PS3.4 Annex B.2.3, Table B.2-1 (C-STORE status).  General statuses: PS3.7
Annex C.  The Cxxx codes are ours within the "Error: Cannot understand" range (C000-CFFF), one
per reason, so the sender's log tells the reasons apart.  Every failure also carries an Error
Comment (0000,0902) from :data:`ERROR_COMMENTS`: fixed text, never anything the sender sent.
"""

from __future__ import annotations

from enum import IntEnum

from pydicom.dataset import Dataset


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
    """In the "Cannot understand" range: a Study/Series/SOP Instance/SOP Class UID is missing or
    breaks PS3.5 9.1 (digits and dots, no leading zero in a component, at most 64 characters)."""

    CANNOT_UNDERSTAND_INSTANCE_CONFLICT = 0xC002
    """In the "Cannot understand" range: the data set's SOP Instance UID differs from the
    command's Affected SOP Instance UID."""

    CANNOT_UNDERSTAND_TRUNCATED = 0xC003
    """In the "Cannot understand" range: an element runs past the end of the data set (truncated
    pixel data, a length larger than what arrived) or the stream is otherwise malformed."""

    CANNOT_UNDERSTAND_IDENTITY_CONFLICT = 0xC004
    """In the "Cannot understand" range: the SOP Instance UID is already stored under another
    study or another patient; the stored instance stays as it is."""

    PROCESSING_FAILURE = 0x0110
    """PS3.7 Annex C general status 0110H "Processing failure": an unexpected error in the listener itself."""


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
    "intake.identity_conflict": StoreStatus.CANNOT_UNDERSTAND_IDENTITY_CONFLICT,
}

#: The Error Comment (LO: at most 64 characters) sent with each failure status.
ERROR_COMMENTS: dict[StoreStatus, str] = {
    StoreStatus.OUT_OF_RESOURCES: "Storage or database unavailable; retry later",
    StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS: "SOP Class UID differs from the context or command",
    StoreStatus.CANNOT_UNDERSTAND: "The data set could not be decoded",
    StoreStatus.CANNOT_UNDERSTAND_MISSING_UID: "A required UID is missing or not a valid UID",
    StoreStatus.CANNOT_UNDERSTAND_INSTANCE_CONFLICT: "SOP Instance UID differs from the command",
    StoreStatus.CANNOT_UNDERSTAND_TRUNCATED: "The data set is truncated or malformed",
    StoreStatus.CANNOT_UNDERSTAND_IDENTITY_CONFLICT: "SOP Instance UID already stored for another study or patient",
    StoreStatus.PROCESSING_FAILURE: "Internal error in the receiver",
}


def store_response(status: int) -> int | Dataset:
    """What a C-STORE handler returns for ``status``: the bare status for Success, else the status
    with its Error Comment."""
    comment = ERROR_COMMENTS.get(StoreStatus(status)) if status in StoreStatus._value2member_map_ else None
    if comment is None:
        return status
    response = Dataset()
    response.Status = status
    response.ErrorComment = comment
    return response
