"""Failure reasons in plain words: never only a class name, never a quoted value."""

from __future__ import annotations

from pydicom.errors import InvalidDicomError

from radassist.errors import PermanentFailure
from radassist.reasons import plain_reason


def test_reasons_say_what_happened_without_patient_data() -> None:
    assert plain_reason(PermanentFailure("the study has no PatientID", code="hl7.no_patient_id")) == (
        "the study has no PatientID")
    assert plain_reason(FileNotFoundError(2, "No such file", "/data/x.dcm")) == (
        "a received instance file is missing from the store")
    assert plain_reason(InvalidDicomError("bad preamble")) == "a received instance file is not readable as DICOM"
    # Our builders name the argument in double quotes (kept); libraries quote the value (blanked).
    assert plain_reason(ValueError('Argument "findings" is empty.\nmore')) == 'Argument "findings" is empty.'
    assert plain_reason(ValueError("Invalid value for VR PN: 'DOE^JANE'")) == "Invalid value for VR PN: '…'"
    unexpected = plain_reason(KeyError("PatientName"), "the drafting code")
    assert unexpected.startswith("an unexpected error in the drafting code (KeyError, ")
    assert "PatientName" not in unexpected and "worker log" in unexpected
    assert plain_reason(MemoryError(), "preparing the images") == "the worker ran out of memory in preparing the images"
