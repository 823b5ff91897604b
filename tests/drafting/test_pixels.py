"""The pixel pipeline beyond the basics of tests/unit/test_imaging.py: CT windows, palette colour,
multi-frame, and decoding only the slices shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from radassist.imaging import prepare_study
from radassist.imaging.pixels import CT_WINDOWS, frame_to_images, frame_to_rgb
from tests.drafting.conftest import write_ct_series


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _window(hu: np.ndarray, name: str) -> np.ndarray:
    centre, width = CT_WINDOWS[name]
    return np.clip((hu - (centre - 0.5 - (width - 1) / 2)) / (width - 1), 0, 1) * 255


def test_ct_windows_packed_as_channels_match_the_standard_formula(testdata: Path) -> None:
    ds = pydicom.dcmread(testdata / "pydicom-data" / "693_J2KR.dcm")
    [rgb] = frame_to_images(ds, windows=("lung", "soft_tissue", "bone"))
    assert rgb.shape == (ds.Rows, ds.Columns, 3) and rgb.dtype == np.uint8
    hu = _hu(ds)
    for channel, name in enumerate(("lung", "soft_tissue", "bone")):
        assert np.abs(rgb[..., channel].astype(np.float64) - _window(hu, name)).max() <= 1.0
    # The three windows really differ on a CT: packing is not three copies of one picture.
    assert abs(float(rgb[..., 0].mean()) - float(rgb[..., 2].mean())) > 20


def test_ct_windows_as_separate_images(testdata: Path) -> None:
    path = testdata / "pydicom-data" / "693_J2KR.dcm"
    ds = pydicom.dcmread(path)
    pictures = frame_to_images(ds, windows=("brain", "bone"), window_mode="images", path=path)
    assert len(pictures) == 2
    assert all(np.array_equal(p[..., 0], p[..., 2]) for p in pictures)  # grey each
    study = prepare_study([path], image_size=64, max_images=8, windows=("brain", "bone"), window_mode="images")
    assert study.labels == ("slice 1 of 1 (brain window)", "slice 1 of 1 (bone window)")
    with pytest.raises(ValueError, match="windows"):
        prepare_study([path], image_size=64, max_images=8, windows=("lungs",))


def test_windows_leave_non_ct_alone(testdata: Path) -> None:
    ds = pydicom.dcmread(testdata / "pydicom-data" / "RG1_J2KR.dcm")  # MONOCHROME1 CR
    [picture] = frame_to_images(ds, windows=("lung", "bone"))
    assert np.array_equal(picture, frame_to_rgb(ds))


def test_palette_colour_multiframe_ultrasound_is_colour(testdata: Path) -> None:
    path = testdata / "pydicom-data" / "OBXXXX1A_rle_2frame.dcm"
    study = prepare_study([path], image_size=64, max_images=4)
    assert len(study.images) == 2  # both frames of the clip
    arr = np.asarray(study.images[0])
    assert arr.shape[2] == 3 and not np.array_equal(arr[..., 0], arr[..., 2])  # real colour, not grey


def test_only_the_shown_slices_are_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import radassist.imaging.pixels as pixels

    paths = write_ct_series(tmp_path / "ct", 60, size=16)
    decoded: list[Path | None] = []
    original = pixels.decode_frame

    def counting(ds: pydicom.Dataset, frame: int = 0, path: Path | None = None) -> np.ndarray:
        decoded.append(path)
        return original(ds, frame, path)

    monkeypatch.setattr(pixels, "decode_frame", counting)
    study = prepare_study(paths, image_size=32, max_images=8, max_slices=5, windows=("lung", "soft_tissue", "bone"))
    assert len(study.images) == 5
    assert len(decoded) == 5 and all(p is not None for p in decoded)  # 5 of 60, each straight from its file
