"""Synthetic source studies for tests: CT-like series with a sentinel patient, written with pydicom.

The sentinel values (``SENTINEL^PHI`` and friends) let a test assert that patient data never
reaches a log record, an error message or a metric label.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import CTImageStorage, generate_uid

from radassist_devtools.synthetic_dicom import grey_image, write_part10

SENTINEL_NAME = "SENTINEL^PHI"
SENTINEL_PATIENT_ID = "SENTINEL-PID-4711"
SENTINEL_ACCESSION = "SENTACC0815"
SENTINEL_BIRTH_DATE = "19010203"
SENTINEL_VALUES = (SENTINEL_NAME, "SENTINEL", SENTINEL_PATIENT_ID, SENTINEL_ACCESSION, SENTINEL_BIRTH_DATE)


def make_ct_instance(
    *,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    series_number: int,
    instance_number: int,
    patient_name: str = SENTINEL_NAME,
    patient_id: str = SENTINEL_PATIENT_ID,
    accession_number: str = SENTINEL_ACCESSION,
    rows: int = 16,
    columns: int = 16,
    study_datetime: dt.datetime = dt.datetime(2024, 3, 14, 9, 26, 53),
) -> pydicom.Dataset:
    """One axial CT slice with the modules a CT Image IOD requires (tiny pixel data)."""
    pixels = (np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns) * 7 + instance_number) % 4096
    ds = grey_image(CTImageStorage, pixels)
    date = study_datetime.strftime("%Y%m%d")
    time = study_datetime.strftime("%H%M%S")
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.ContentDate = date
    ds.AcquisitionDate = date
    ds.StudyTime = time
    ds.SeriesTime = time
    ds.ContentTime = time
    ds.AccessionNumber = accession_number
    ds.Modality = "CT"
    ds.Manufacturer = "Synthetic Scanners Inc"
    ds.ManufacturerModelName = "Synth CT 1"
    ds.InstitutionName = "Sentinel General Hospital"
    ds.ReferringPhysicianName = "REFERRER^SENTINEL"
    ds.StudyDescription = "CT CHEST W/O CONTRAST"
    ds.SeriesDescription = f"Axial {series_number}"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = "SENTINEL-HOSP"
    ds.PatientBirthDate = SENTINEL_BIRTH_DATE
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.KVP = "120"
    ds.SliceThickness = "2.5"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [-100.0, -100.0, -2.5 * instance_number]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = -2.5 * instance_number
    ds.PixelSpacing = [0.7, 0.7]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    return ds


def make_ct_study(
    *,
    series_count: int = 2,
    instances_per_series: int = 3,
    patient_name: str = SENTINEL_NAME,
    patient_id: str = SENTINEL_PATIENT_ID,
    accession_number: str = SENTINEL_ACCESSION,
    rows: int = 16,
    columns: int = 16,
) -> list[pydicom.Dataset]:
    """A multi-series CT-like study (same study, patient and frame of reference)."""
    study_uid = generate_uid()
    frame_uid = generate_uid()
    instances: list[pydicom.Dataset] = []
    for series_number in range(1, series_count + 1):
        series_uid = generate_uid()
        for instance_number in range(1, instances_per_series + 1):
            instances.append(
                make_ct_instance(
                    study_uid=study_uid,
                    series_uid=series_uid,
                    frame_of_reference_uid=frame_uid,
                    series_number=series_number,
                    instance_number=instance_number,
                    patient_name=patient_name,
                    patient_id=patient_id,
                    accession_number=accession_number,
                    rows=rows,
                    columns=columns,
                )
            )
    return instances


def write_study(instances: Sequence[pydicom.Dataset], folder: Path) -> list[Path]:
    """Write each instance as a DICOM Part 10 file; return the paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_part10(ds, folder / f"{ds.SOPInstanceUID}.dcm") for ds in instances]


def headers(instances: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The instances as a receiver sees them after ``dcmread(stop_before_pixels=True)``."""
    out = []
    for ds in instances:
        header = pydicom.Dataset(ds)
        header.file_meta = ds.file_meta
        if "PixelData" in header:
            del header.PixelData
        out.append(header)
    return out
