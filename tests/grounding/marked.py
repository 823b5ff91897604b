"""Synthetic source images with a bright marker at a known place, and a way to find it again.

The marker covers whole pixels, so in DICOM image coordinates (PS3.3 C.18.6.1.1) a marker on
columns ``c0 .. c1 - 1`` and rows ``r0 .. r1 - 1`` is exactly the box ``(c0, r0, c1, r1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image
from pydicom.uid import generate_uid

from tests.dicom_factories import make_ct_instance

MULTIFRAME_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture

Marker = tuple[int, int, int, int]  # column_min, row_min, column_max (exclusive), row_max (exclusive)


def _frame(columns: int, rows: int, marker: Marker | None) -> NDArray[np.uint16]:
    # A soft gradient as the background (so that the window is not degenerate), the marker at 4000.
    background = (np.add.outer(np.arange(rows), np.arange(columns)) % 64 + 900).astype(np.uint16)
    if marker is not None:
        c0, r0, c1, r1 = marker
        background[r0:r1, c0:c1] = 4000
    return background


def marked_ct(columns: int, rows: int, marker: Marker, **kwargs: object) -> pydicom.Dataset:
    """A single-frame CT slice, ``columns`` x ``rows``, with ``marker`` bright (full window)."""
    ds = make_ct_instance(
        study_uid=str(kwargs.get("study_uid") or generate_uid()),
        series_uid=str(kwargs.get("series_uid") or generate_uid()),
        frame_of_reference_uid=str(kwargs.get("frame_of_reference_uid") or generate_uid()),
        series_number=1,
        instance_number=1,
        rows=rows,
        columns=columns,
    )
    ds.WindowCenter, ds.WindowWidth = "1500", "3000"  # HU = stored - 1024: background dark, marker white
    ds.PixelData = _frame(columns, rows, marker).tobytes()
    return ds


def marked_multiframe(columns: int, rows: int, frames: int, marked_frame: int, marker: Marker) -> pydicom.Dataset:
    """A multi-frame secondary capture whose frame ``marked_frame`` (1-based) alone has ``marker``."""
    ds = make_ct_instance(
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        series_number=1,
        instance_number=1,
        rows=rows,
        columns=columns,
    )
    for keyword in ("RescaleIntercept", "RescaleSlope", "RescaleType", "KVP", "SliceThickness", "SliceLocation",
                    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "FrameOfReferenceUID",
                    "PositionReferenceIndicator", "AcquisitionNumber", "PatientPosition"):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MULTIFRAME_SC
    ds.Modality = "OT"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ConversionType = "WSD"
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = "100"
    ds.WindowCenter, ds.WindowWidth = "3000", "2000"  # the background lies below the window: black
    stack = [_frame(columns, rows, marker if n == marked_frame else None) for n in range(1, frames + 1)]
    ds.PixelData = np.stack(stack).tobytes()
    return ds


def bright_box(picture: Image.Image | NDArray[np.uint8], threshold: int = 128) -> tuple[int, int, int, int]:
    """The pixel-edge box ``(x_min, y_min, x_max, y_max)`` around the bright pixels of ``picture``."""
    array = np.asarray(picture)
    grey = array if array.ndim == 2 else array[..., 0]
    rows = np.flatnonzero((grey >= threshold).any(axis=1))
    columns = np.flatnonzero((grey >= threshold).any(axis=0))
    if not rows.size:
        raise AssertionError("no bright pixel in the picture")
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def near(actual: Sequence[float], expected: Sequence[float], tolerance: float) -> bool:
    return len(actual) == len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))
