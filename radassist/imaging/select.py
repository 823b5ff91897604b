"""Choose which frames of a study the model sees, and in what order.

A reporting radiologist reads a chest film PA/AP first and the lateral after, and pages through a
CT or MR volume along the slice axis.  The model gets the same: projection images ordered by view,
and for a volume a few slices evenly spaced along the slice normal of its largest series (the
order of arrival and InstanceNumber are not reliable for that).  Non-image objects (SR, PR, KO,
SEG, anything without pixel data) are skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from radassist.imaging.context import NON_IMAGE_MODALITIES
from radassist.imaging.pixels import number_of_frames

PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "IO", "PX", "RG"})
VOLUME_MODALITIES = frozenset({"CT", "MR", "PT"})
# Frames shown of one cine or other multi-frame object that is not a volume.
MAX_FRAMES_PER_CLIP = 3

_VIEW_RANK = {
    "PA": 0,
    "AP": 1,
    "CC": 0,
    "MLO": 1,
    "LL": 3,
    "RL": 3,
    "LAT": 3,
    "LATERAL": 3,
    "LLD": 3,
    "RLD": 3,
}
_NON_IMAGE_SOP_CLASS_WORDS = ("SR Storage", "Presentation State", "Key Object Selection", "Segmentation")


@dataclass(frozen=True)
class Frame:
    """One frame the model will see: which file, its header, which frame of it."""

    path: Path
    dataset: Dataset
    frame: int = 0


def is_image(ds: Dataset) -> bool:
    """True for objects a radiologist would look at as a picture."""
    if "PixelData" not in ds:
        return False
    modality = str(ds.get("Modality", "")).upper()
    if modality in NON_IMAGE_MODALITIES:
        return False
    sop_class = ds.get("SOPClassUID")
    name = UID(str(sop_class)).name if sop_class else ""
    return not any(word in name for word in _NON_IMAGE_SOP_CLASS_WORDS)


def sample_evenly(count: int, wanted: int) -> list[int]:
    """``wanted`` indices spread over ``range(count)``, each at the centre of its share."""
    if wanted <= 0 or count <= 0:
        return []
    if count <= wanted:
        return list(range(count))
    return [int((i + 0.5) * count / wanted) for i in range(wanted)]


def _float_list(value: Any) -> list[float] | None:
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers or None


def _plane(ds: Dataset, frame: int | None) -> tuple[list[float] | None, list[float] | None]:
    """(ImagePositionPatient, ImageOrientationPatient) of a frame, from functional groups if enhanced."""
    position = _float_list(ds.get("ImagePositionPatient"))
    orientation = _float_list(ds.get("ImageOrientationPatient"))
    if frame is not None:
        groups = []
        shared = ds.get("SharedFunctionalGroupsSequence")
        if shared:
            groups.append(shared[0])
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        if per_frame and frame < len(per_frame):
            groups.append(per_frame[frame])
        for group in groups:
            if group.get("PlanePositionSequence"):
                position = _float_list(group.PlanePositionSequence[0].get("ImagePositionPatient")) or position
            if group.get("PlaneOrientationSequence"):
                orientation = (
                    _float_list(group.PlaneOrientationSequence[0].get("ImageOrientationPatient"))
                    or orientation
                )
    return position, orientation


def _slice_key(ds: Dataset, frame: int | None) -> float | None:
    position, orientation = _plane(ds, frame)
    if position is None or orientation is None or len(position) != 3 or len(orientation) != 6:
        return None
    normal = np.cross(np.array(orientation[:3]), np.array(orientation[3:]))
    return float(np.dot(normal, np.array(position)))


def _instance_number(ds: Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber") or 0)
    except (TypeError, ValueError):
        return 0


def _is_localizer(ds: Dataset) -> bool:
    return any(str(v).upper() == "LOCALIZER" for v in (ds.get("ImageType") or ()))


def _projection_frames(items: list[tuple[Path, Dataset]], notes: list[str]) -> list[Frame]:
    def rank(item: tuple[Path, Dataset]) -> tuple[int, int]:
        view = str(item[1].get("ViewPosition", "") or "").upper()
        return (_VIEW_RANK.get(view, 2), _instance_number(item[1]))

    if any(not str(ds.get("ViewPosition", "") or "").strip() for _, ds in items):
        notes.append("no laterality/view tags")
    frames: list[Frame] = []
    for path, ds in sorted(items, key=rank):
        for index in sample_evenly(number_of_frames(ds), MAX_FRAMES_PER_CLIP):
            frames.append(Frame(path, ds, index))
    return frames


def _volume_frames(items: list[tuple[Path, Dataset]], max_images: int, notes: list[str]) -> list[Frame]:
    series: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path, ds in items:
        series[str(ds.get("SeriesInstanceUID", ""))].append((path, ds))

    def size(members: list[tuple[Path, Dataset]]) -> int:
        return sum(number_of_frames(ds) for _, ds in members if not _is_localizer(ds))

    chosen = max(series.values(), key=size)
    if len(series) > 1:
        notes.append(f"volume: largest of {len(series)} series shown")
    entries: list[tuple[float | None, int, Frame]] = []
    for path, ds in chosen:
        if _is_localizer(ds) and size(chosen) > 0:
            continue
        frames = number_of_frames(ds)
        for index in range(frames):
            key = _slice_key(ds, index if frames > 1 or "PerFrameFunctionalGroupsSequence" in ds else None)
            entries.append((key, _instance_number(ds) * 100000 + index, Frame(path, ds, index)))
    if all(key is not None for key, _, _ in entries):
        entries.sort(key=lambda e: (e[0], e[1]))
    else:
        notes.append("no slice positions; ordered by instance number")
        entries.sort(key=lambda e: e[1])
    picked = sample_evenly(len(entries), max_images)
    if len(picked) < len(entries):
        notes.append(f"{len(picked)} of {len(entries)} slices shown")
    return [entries[i][2] for i in picked]


def select_frames(items: Sequence[tuple[Path, Dataset]], max_images: int) -> tuple[list[Frame], list[str]]:
    """The frames to show (at most ``max_images``), in reading order, and notes on the choice."""
    notes: list[str] = []
    images = [(path, ds) for path, ds in items if is_image(ds)]
    skipped = len(items) - len(images)
    if skipped:
        notes.append(f"{skipped} non-image object(s) skipped")
    by_kind: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path, ds in images:
        modality = str(ds.get("Modality", "")).upper()
        if modality in PROJECTION_MODALITIES:
            by_kind["projection"].append((path, ds))
        elif modality in VOLUME_MODALITIES:
            by_kind["volume"].append((path, ds))
        else:
            by_kind["other"].append((path, ds))
    frames: list[Frame] = []
    if by_kind["projection"]:
        frames += _projection_frames(by_kind["projection"], notes)
    if by_kind["volume"]:
        frames += _volume_frames(by_kind["volume"], max_images, notes)
    for path, ds in sorted(by_kind["other"], key=lambda item: _instance_number(item[1])):
        for index in sample_evenly(number_of_frames(ds), MAX_FRAMES_PER_CLIP):
            frames.append(Frame(path, ds, index))
    if len(frames) > max_images:
        notes.append(f"{max_images} of {len(frames)} candidate images shown")
        frames = frames[:max_images]
    return frames, notes
