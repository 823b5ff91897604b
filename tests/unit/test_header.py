"""The worklist's age and sex come from the header at intake; the birth date is never kept."""

from __future__ import annotations

import dataclasses

import pytest
from pydicom.config import disable_value_validation
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radassist.intake.header import read_header


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
