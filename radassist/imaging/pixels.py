"""Decode one frame and turn it into the 8-bit RGB picture a radiologist would see.

The order follows PS3.3 C.11: stored values -> Modality LUT / rescale (physical units such as HU)
-> VOI LUT / window (what is displayed) -> presentation (MONOCHROME1 is inverted so that more
attenuation is brighter, as on a MONOCHROME2 display).  When the header has no window we
window on the 0.5-99.5 percentiles, which ignores padding and a few hot pixels.

Enhanced multi-frame objects keep rescale and window per frame in the functional group
sequences; we copy the frame's values onto a small flat dataset so pydicom's LUT functions,
which read top-level attributes, apply to them too.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array

from radassist.errors import PermanentFailure

logger = logging.getLogger(__name__)

_FLAT_KEYWORDS = (
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "Modality",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
)
# Functional group macros that carry the values above, and the attributes each holds.
_GROUPS = {
    "PixelValueTransformationSequence": ("RescaleSlope", "RescaleIntercept", "RescaleType"),
    "FrameVOILUTSequence": ("WindowCenter", "WindowWidth", "VOILUTFunction"),
}


def number_of_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _frame_view(ds: Dataset, frame: int) -> Dataset:
    """A flat dataset holding the LUT-related attributes in force for ``frame``."""
    view = Dataset()
    for keyword in _FLAT_KEYWORDS:
        if keyword in ds:
            view[keyword] = ds[keyword]
    groups: list[Dataset] = []
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])  # per-frame values override shared ones
    for group in groups:
        for sequence, keywords in _GROUPS.items():
            items = group.get(sequence)
            if not items:
                continue
            for keyword in keywords:
                if keyword in items[0]:
                    view[keyword] = items[0][keyword]
    return view


def _percentile_window(arr: NDArray[Any]) -> NDArray[np.float64]:
    low, high = np.percentile(arr, [0.5, 99.5])
    if high <= low:
        low, high = float(arr.min()), float(arr.max())
    if high <= low:
        return np.zeros(arr.shape, dtype=np.float64)
    unit: NDArray[np.float64] = np.clip((arr.astype(np.float64) - low) / (high - low), 0.0, 1.0)
    return unit


def _min_max(arr: NDArray[Any]) -> NDArray[np.float64]:
    low, high = float(arr.min()), float(arr.max())
    if high <= low:
        return np.zeros(arr.shape, dtype=np.float64)
    return (arr.astype(np.float64) - low) / (high - low)


def _grey_to_unit(stored: NDArray[Any], view: Dataset) -> NDArray[np.float64]:
    """Modality LUT, VOI LUT or window, then scale to 0..1 (1 = bright on a MONOCHROME2 display)."""
    values = apply_modality_lut(stored, view)
    has_voi = "VOILUTSequence" in view or ("WindowCenter" in view and "WindowWidth" in view)
    if has_voi:
        try:
            windowed = apply_voi_lut(values, view, index=0)
            unit = _min_max(windowed)
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            logger.debug("VOI LUT not applicable (%s); using percentile window", type(exc).__name__)
            unit = _percentile_window(values)
    else:
        unit = _percentile_window(values)
    if str(view.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        unit = 1.0 - unit
    return unit


def _colour_to_uint8(arr: NDArray[Any]) -> NDArray[np.uint8]:
    if arr.dtype == np.uint8:
        return arr
    top = float(arr.max()) if arr.size else 0.0
    scale = 65535.0 if top > 255 else 255.0
    return np.clip(arr.astype(np.float64) / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)


def decode_frame(ds: Dataset, frame: int = 0) -> NDArray[Any]:
    """The stored values of one frame (colour already converted to RGB by pydicom)."""
    try:
        if number_of_frames(ds) > 1:
            return pixel_array(ds, index=frame)
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001 -- decoder errors may quote the dataset: re-raise cleanly
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", None) or "unknown transfer syntax"
        raise PermanentFailure(
            f"pixel data could not be decoded ({name}; {type(exc).__name__})", code="dicom.undecodable"
        ) from None


def frame_to_rgb(ds: Dataset, frame: int = 0) -> NDArray[np.uint8]:
    """Decode ``frame`` and return it as display-ready 8-bit RGB (H x W x 3)."""
    stored = decode_frame(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        try:
            rgb = _colour_to_uint8(apply_color_lut(stored, ds))
        except Exception as exc:  # noqa: BLE001 -- any LUT error means the same: undecodable
            raise PermanentFailure(
                f"palette colour lookup failed ({type(exc).__name__})", code="dicom.undecodable"
            ) from None
    elif stored.ndim == 3 and stored.shape[-1] in (3, 4):
        rgb = _colour_to_uint8(stored[..., :3])
    else:
        if stored.ndim != 2:
            raise PermanentFailure(f"unexpected pixel array shape {stored.shape}", code="dicom.undecodable")
        unit = _grey_to_unit(stored, _frame_view(ds, frame))
        grey = np.clip(unit * 255.0 + 0.5, 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    return np.ascontiguousarray(rgb)


def to_image(rgb: NDArray[np.uint8], image_size: int) -> Image.Image:
    """An RGB PIL image whose longest side is ``image_size`` pixels, aspect ratio kept."""
    if image_size < 1:
        raise ValueError("image_size: must be at least 1")
    image = Image.fromarray(rgb).convert("RGB")
    width, height = image.size
    scale = image_size / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0 if scale < 0.5 else None)
    return image
