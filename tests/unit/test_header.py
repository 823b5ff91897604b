"""The worklist's age and sex come from the header at intake; the birth date is never kept."""

from __future__ import annotations

import dataclasses
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.config import disable_value_validation
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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
