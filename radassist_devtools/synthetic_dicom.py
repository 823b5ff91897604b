"""Synthetic greyscale DICOM images for tests and benchmarks.

The test factories (CT slices, chest radiographs, evaluation films) and the bench scripts each
need an image a receiver accepts as Part 10: file meta that agrees with the SOP identity, and a
pixel module that agrees with the pixel data.  Those parts are the same whatever the modality,
and a mistake in them (a transfer syntax the pixels do not match, Rows that are not the array's)
shows up as a confusing failure far from the factory, so they are written once here; each caller
then sets the attributes of its own modality.  It lives in this package, not in ``tests``, so a
bench script can import it without reaching into the test suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid


def grey_image(sop_class_uid: str, pixels: npt.NDArray[Any]) -> pydicom.Dataset:
    """A new instance of ``sop_class_uid`` (a fresh SOP Instance UID, explicit VR little endian) holding
    ``pixels`` (rows x columns) as one monochrome frame, 12 bits stored in 16 as CR, DX and CT
    detectors give; the caller adds its study, series, patient and modality attributes."""
    rows, columns = pixels.shape
    sop_uid = generate_uid()
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class_uid, sop_uid
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


def write_part10(ds: pydicom.Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file at ``path`` (its folder made if missing); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
