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

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

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


def _rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) in force for ``frame``, without building a frame view."""
    slope: Any = ds.get("RescaleSlope")
    intercept: Any = ds.get("RescaleIntercept")
    if "SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds:
        for keyword, index in (("SharedFunctionalGroupsSequence", 0), ("PerFrameFunctionalGroupsSequence", frame)):
            groups = ds.get(keyword)
            if groups and index < len(groups):
                items = groups[index].get("PixelValueTransformationSequence")
                if items:
                    slope = items[0].get("RescaleSlope", slope)
                    intercept = items[0].get("RescaleIntercept", intercept)
    try:
        return float(slope if slope not in (None, "") else 1.0), float(intercept if intercept not in (None, "") else 0.0)
    except (TypeError, ValueError):
        return 1.0, 0.0


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


def decode_frame(ds: Dataset, frame: int = 0, path: Path | None = None) -> NDArray[Any]:
    """The stored values of one frame (colour already converted to RGB by pydicom).

    With ``path`` the frame is decoded straight from the file: pydicom then reads only that
    frame's bytes and the header's Pixel Data stays unloaded, so a 300-slice series sampled to
    8 slices reads and decodes 8 slices and holds at most one of them at a time.
    """
    try:
        if path is not None:
            return pixel_array(path, index=frame if number_of_frames(ds) > 1 else None)
        if number_of_frames(ds) > 1:
            return pixel_array(ds, index=frame)
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001 -- decoder errors may quote the dataset: re-raise cleanly
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", None) or "unknown transfer syntax"
        raise PermanentFailure(
            f"pixel data could not be decoded ({name}; {type(exc).__name__})", code="dicom.undecodable"
        ) from None


# CT windows as (centre, width) in HU: the presets radiologists page through.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (32.0, 8.0),
    "liver": (60.0, 160.0),
}
WindowMode = Literal["channels", "images"]


def check_windows(windows: Sequence[str]) -> tuple[str, ...]:
    """The window names, checked against :data:`CT_WINDOWS` (a typo must fail at start, not per job)."""
    unknown = [w for w in windows if w not in CT_WINDOWS]
    if unknown:
        raise ValueError(f"windows: unknown CT window(s) {', '.join(unknown)}; known: {', '.join(CT_WINDOWS)}")
    return tuple(windows)


def _window_unit(values: NDArray[Any], name: str) -> NDArray[np.float32]:
    """PS3.3 C.11.2.1.2.1 linear window, scaled to 0..1."""
    centre, width = CT_WINDOWS[name]
    low = centre - 0.5 - (width - 1.0) / 2.0
    unit: NDArray[np.float32] = np.clip((values - np.float32(low)) / np.float32(width - 1.0), 0.0, 1.0)
    return unit


def _to_uint8(unit: NDArray[Any]) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = (unit * 255.0 + 0.5).astype(np.uint8)
    return out


def frame_pictures(
    ds: Dataset,
    frame: int = 0,
    *,
    windows: Sequence[str] = (),
    window_mode: WindowMode = "channels",
    path: Path | None = None,
) -> list[Image.Image]:
    """One frame as the 8-bit RGB picture(s) the model sees, at full resolution.

    For CT with ``windows`` the frame is shown in each named window: packed as the R, G, B channels
    of one picture (``channels``; up to three windows, the last repeated when fewer) or as one grey
    picture per window (``images``).  Anything else gives one picture as :func:`frame_to_rgb`.
    """
    modality = str(ds.get("Modality", "")).upper()
    if not windows or modality != "CT":
        return [Image.fromarray(frame_to_rgb(ds, frame, path=path))]
    stored = decode_frame(ds, frame, path)
    if stored.ndim != 2:
        return [Image.fromarray(frame_to_rgb(ds, frame, path=path))]
    slope, intercept = _rescale(ds, frame)
    packs = [tuple(windows[:3]) + (windows[-1],) * (3 - len(windows[:3]))] if window_mode == "channels" else [
        (name, name, name) for name in windows
    ]
    height, width = stored.shape
    if stored.dtype.itemsize <= 2 and stored.dtype.kind in "iu":
        # Integer stored values: one gather through a cached stored-value -> packed-RGBX table per
        # picture, not float arithmetic per pixel per window.
        codes: NDArray[np.unsignedinteger[Any]] = stored.view(np.uint8 if stored.dtype.itemsize == 1 else np.uint16)
        pictures = []
        for pack in packs:
            rgbx = np.take(_window_lut(stored.dtype.str, slope, intercept, pack), codes)
            pictures.append(Image.frombuffer("RGBX", (width, height), rgbx, "raw", "RGBX", 0, 1).convert("RGB"))
        return pictures
    hu = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    del stored
    greys = {name: _to_uint8(_window_unit(hu, name)) for name in set(windows)}
    return [Image.fromarray(np.ascontiguousarray(np.stack([greys[n] for n in pack], axis=2))) for pack in packs]


def frame_to_images(
    ds: Dataset,
    frame: int = 0,
    *,
    windows: Sequence[str] = (),
    window_mode: WindowMode = "channels",
    path: Path | None = None,
) -> list[NDArray[np.uint8]]:
    """:func:`frame_pictures` as H x W x 3 arrays."""
    return [
        np.asarray(p) for p in frame_pictures(ds, frame, windows=windows, window_mode=window_mode, path=path)
    ]


@functools.lru_cache(maxsize=32)
def _window_lut(dtype: str, slope: float, intercept: float, pack: tuple[str, ...]) -> NDArray[np.uint32]:
    """Every possible stored value (8 or 16 bit) mapped to R | G << 8 | B << 16 under ``pack``'s windows."""
    kind = np.dtype(dtype)
    codes = np.arange(2 ** (8 * kind.itemsize), dtype=np.uint8 if kind.itemsize == 1 else np.uint16).view(kind)
    hu = codes.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    greys = {name: _to_uint8(_window_unit(hu, name)).astype(np.uint32) for name in set(pack)}
    lut: NDArray[np.uint32] = (greys[pack[0]] | (greys[pack[1]] << 8) | (greys[pack[2]] << 16)).astype(np.uint32)
    lut.flags.writeable = False
    return lut


def frame_to_rgb(ds: Dataset, frame: int = 0, *, path: Path | None = None) -> NDArray[np.uint8]:
    """Decode ``frame`` and return it as display-ready 8-bit RGB (H x W x 3)."""
    stored = decode_frame(ds, frame, path)
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


def to_image(rgb: NDArray[np.uint8] | Image.Image, image_size: int) -> Image.Image:
    """An RGB PIL image whose longest side is at most ``image_size`` pixels, aspect ratio kept.

    Smaller pictures keep their native size: upscaling adds no information, and the model's
    processor resizes to its own input size anyway.
    """
    if image_size < 1:
        raise ValueError("image_size: must be at least 1")
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    scale = image_size / max(width, height)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0 if scale < 0.5 else None)
    return image
