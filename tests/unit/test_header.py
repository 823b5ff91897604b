"""The worklist's age and sex come from the header at intake; the birth date is never kept."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.config import disable_value_validation
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from radassist.errors import RejectedInput
from radassist.intake.header import parse_header, read_header
from tests.conftest import TESTDATA


def _dataset(**values: str) -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    with disable_value_validation():  # as a sender might: bad values must be shrugged off
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@pytest.mark.parametrize(
    ("values", "age", "sex"),
    [
        ({"PatientAge": "064Y", "PatientSex": "F"}, "064Y", "F"),
        ({"PatientAge": "6 years", "PatientBirthDate": "19600615", "StudyDate": "20260614"}, "065Y", None),
        ({"PatientBirthDate": "19600615", "StudyDate": "20260615", "PatientSex": "m"}, "066Y", "M"),
        ({"PatientBirthDate": "garbage", "StudyDate": "20260615", "PatientSex": "X"}, None, None),
        ({}, None, None),
    ],
)
def test_age_and_sex(values: dict[str, str], age: str | None, sex: str | None) -> None:
    header = read_header(_dataset(**values))
    assert (header.patient_age, header.patient_sex) == (age, sex)
    assert all("19600615" not in str(v) for v in dataclasses.asdict(header).values())


@pytest.mark.parametrize(
    "path",
    [
        get_testdata_file("CT_small.dcm"),  # explicit VR little endian
        get_testdata_file("MR_small_implicit.dcm"),
        get_testdata_file("MR_small_bigendian.dcm"),
        get_testdata_file("image_dfl.dcm"),  # deflated: through dcmread
        get_testdata_file("SC_rgb_rle.dcm"),
        get_testdata_file("rtplan.dcm"),  # no pixels, sequences
        str(TESTDATA / "pydicom-data" / "RG1_J2KR.dcm"),
        str(TESTDATA / "mammograms" / "1-282.dcm"),  # JPEG 2000, MONOCHROME1
    ],
    ids=lambda p: Path(str(p)).name,
)
def test_parse_header_reads_what_a_full_read_does(path: str) -> None:
    """The listener's header parse (only the persisted elements) agrees with dcmread + read_header."""
    encoded = Path(path).read_bytes()
    full = dcmread(BytesIO(encoded), stop_before_pixels=True)
    if "StudyInstanceUID" not in full or "SeriesInstanceUID" not in full:
        pytest.skip("the test file has no study/series UID")
    assert parse_header(encoded, str(full.file_meta.TransferSyntaxUID)) == read_header(full)


def test_parse_header_refuses_a_stream_without_file_meta() -> None:
    with pytest.raises(RejectedInput) as refused:
        parse_header(b"\x00" * 64, ExplicitVRLittleEndian)
    assert refused.value.code == "dicom.undecodable"


_EDGE_VALUES: list[dict[str, object]] = [
    {"Modality": "CT\\MR"},  # several values: pydicom's MultiValue, as before
    {"SpecificCharacterSet": "ISO_IR 100", "StudyDescription": "Thorax ärztlich", "AccessionNumber": " A12 "},
    {"SpecificCharacterSet": "ISO_IR 192", "SeriesDescription": "Schädel axial"},
    {"SpecificCharacterSet": ["", "ISO 2022 IR 87"], "StudyDescription": "胸部", "SeriesDescription": "CHEST"},
    {"SpecificCharacterSet": "GB18030", "StudyDescription": "胸部 PA"},
    {"SeriesNumber": "+12", "InstanceNumber": " 7"},
    {"SeriesNumber": "12.0", "InstanceNumber": "2147483648"},
    {"SeriesNumber": "987654", "InstanceNumber": ""},  # patched to "9x7y6z" below
    {"StudyDescription": "X" * 300, "Modality": "CR\x00"},  # longer than the walk reads at once
    {"SOPInstanceUID": "1.2.55555.1"},  # patched to an invalid UID below
    {"StudyInstanceUID": ""},
    {"PatientAge": "064Y", "PatientSex": "f", "PatientBirthDate": "19600615", "StudyDate": "20260614"},
]


@pytest.mark.parametrize("values", _EDGE_VALUES, ids=lambda v: ",".join(v))
@pytest.mark.parametrize(
    ("transfer_syntax", "implicit", "little"),
    [(ExplicitVRLittleEndian, False, True), (ImplicitVRLittleEndian, True, True), (ExplicitVRBigEndian, False, False)],
    ids=["explicit", "implicit", "big-endian"],
)
def test_parse_header_decodes_values_as_pydicom_does(
    values: dict[str, object], transfer_syntax: str, implicit: bool, little: bool
) -> None:
    """Plain ASCII values are decoded directly (radassist.intake.header._ReceivedElements), the rest by
    pydicom: either way the header is the one a full read gives, or the same refusal."""
    patches = {b"987654": b"9x7y6z", b"1.2.55555.1": b"1.2.5abc5.1"}  # values pydicom would not write
    ds = _dataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = BytesIO()
    with disable_value_validation():  # written as a careless sender would
        for keyword, value in values.items():
            ds.pop(keyword, None)  # an element keeps the validation mode it was made with
            setattr(ds, keyword, value)
        ds.save_as(buffer, implicit_vr=implicit, little_endian=little, enforce_file_format=True)
    encoded = buffer.getvalue()

    def outcome(read: Callable[[], object]) -> object:
        try:
            return read()
        except RejectedInput as refused:
            return refused.code

    for old, new in patches.items():
        encoded = encoded.replace(old, new)
    with disable_value_validation():  # as the listener reads (pydicom's default only warns)
        expected = outcome(lambda: read_header(dcmread(BytesIO(encoded), stop_before_pixels=True)))
        assert outcome(lambda: parse_header(encoded, transfer_syntax)) == expected


def test_a_plain_header_is_decoded_without_pydicoms_data_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the direct decode: the usual header (ASCII UIDs, codes, numbers, text) never
    builds a pydicom data set, whose value conversion was most of the listener's parse time."""
    encoded = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    expected = parse_header(encoded, ExplicitVRLittleEndian)

    class NoDataSet:
        def __init__(self, *_args: object) -> None:
            raise AssertionError("a pydicom data set was built")

    monkeypatch.setattr("radassist.intake.header.Dataset", NoDataSet)
    assert parse_header(encoded, ExplicitVRLittleEndian) == expected
