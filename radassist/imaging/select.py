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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from radassist.imaging.context import NON_IMAGE_MODALITIES
from radassist.imaging.pixels import number_of_frames

PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "IO", "PX", "RG"})
VOLUME_MODALITIES = frozenset({"CT", "MR", "PT"})
# Frames shown of one cine or other multi-frame object that is not a volume.
MAX_FRAMES_PER_CLIP = 3

_VIEW_RANK = {"PA": 0, "AP": 1, "LAT": 3}
_NON_IMAGE_SOP_CLASS_WORDS = ("SR Storage", "Presentation State", "Key Object Selection", "Segmentation")


@dataclass(frozen=True)
class Frame:
    """One frame the model will see: which file, its header, which frame of it, and what it shows."""

    path: Path
    dataset: Dataset
    frame: int = 0
    label: str = ""
    """``R CC``, ``PA``, ``lateral``, ``slice 3 of 8``: said to the model next to the picture."""


@dataclass
class Selection:
    """The frames to show, in reading order, and what was decided on the way (for the draft's record)."""

    frames: list[Frame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series_chosen: dict[str, Any] | None = None
    lateralities: set[str] = field(default_factory=set)


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
    (a1, a2, a3), (b1, b2, b3) = orientation[:3], orientation[3:]
    normal = (a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1)  # row x column direction
    return normal[0] * position[0] + normal[1] * position[1] + normal[2] * position[2]


def _instance_number(ds: Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber") or 0)
    except (TypeError, ValueError):
        return 0


def _is_localizer(ds: Dataset) -> bool:
    return any(str(v).upper() == "LOCALIZER" for v in (ds.get("ImageType") or ()))


def _text(ds: Dataset, keyword: str) -> str:
    try:
        return " ".join(str(ds.get(keyword, "") or "").split()).upper()
    except Exception:  # noqa: BLE001 -- a malformed element only means the value is unknown
        return ""


def laterality(ds: Dataset) -> str:
    """``R``, ``L``, ``B`` or ``""``: ImageLaterality, else the series' Laterality, else FrameLaterality."""
    value = _text(ds, "ImageLaterality") or _text(ds, "Laterality")
    if not value:
        for group in ds.get("SharedFunctionalGroupsSequence") or ():
            for item in group.get("FrameAnatomySequence") or ():
                value = _text(item, "FrameLaterality")
    return value if value in ("R", "L", "B") else ""


_VIEW_WORDS = (
    ("MEDIO-LATERAL OBLIQUE", "MLO"),
    ("MEDIOLATERAL OBLIQUE", "MLO"),
    ("CRANIO-CAUDAL", "CC"),
    ("CRANIOCAUDAL", "CC"),
    ("POSTERO-ANTERIOR", "PA"),
    ("POSTEROANTERIOR", "PA"),
    ("ANTERO-POSTERIOR", "AP"),
    ("ANTEROPOSTERIOR", "AP"),
    ("LATERAL", "LAT"),
)


def view_position(ds: Dataset) -> str:
    """The projection: ViewPosition, else ViewCodeSequence's meaning, else words of the descriptions."""
    value = _text(ds, "ViewPosition")
    if value:
        return "LAT" if value in ("LL", "RL", "LATERAL", "LLD", "RLD") else value
    for item in ds.get("ViewCodeSequence") or ():
        meaning = _text(item, "CodeMeaning")
        for words, view in _VIEW_WORDS:
            if words in meaning:
                return view
    for keyword in ("SeriesDescription", "ProtocolName", "ImageComments", "AcquisitionDeviceProcessingDescription"):
        found = set(_text(ds, keyword).replace("_", " ").replace("/", " ").split())
        for view in ("PA", "AP", "CC", "MLO", "LAT", "LATERAL"):
            if view in found:
                return "LAT" if view == "LATERAL" else view
    return ""


_RADIOGRAPH_LABELS = {"PA": "PA", "AP": "AP", "LAT": "lateral"}
_MAMMO_ORDER = {("R", "CC"): 0, ("L", "CC"): 1, ("R", "MLO"): 2, ("L", "MLO"): 3}


def _projection_frames(items: list[tuple[Path, Dataset]], selection: Selection) -> None:
    """Radiographs: frontal (PA before AP) first, then lateral, then the rest, each labelled."""

    def rank(item: tuple[Path, Dataset]) -> tuple[int, int]:
        return (_VIEW_RANK.get(view_position(item[1]), 2), _instance_number(item[1]))

    if any(not view_position(ds) for _, ds in items):
        selection.notes.append("no laterality/view tags on some radiographs: view unknown")
    for path, ds in sorted(items, key=rank):
        view = view_position(ds)
        side = laterality(ds)
        if side:
            selection.lateralities.add(side)
        label = _RADIOGRAPH_LABELS.get(view, view.lower() if view else "view unknown")
        if side in ("R", "L"):
            label = f"{side} {label}"
        for index in sample_evenly(number_of_frames(ds), MAX_FRAMES_PER_CLIP):
            selection.frames.append(Frame(path, ds, index, label))


def _mammography_frames(items: list[tuple[Path, Dataset]], selection: Selection) -> None:
    """The four standard views R CC, L CC, R MLO, L MLO (one each), then any others; labelled."""
    by_view: dict[tuple[str, str], list[tuple[Path, Dataset]]] = defaultdict(list)
    missing_side = missing_view = 0
    for path, ds in items:
        side, view = laterality(ds), view_position(ds)
        missing_side += not side
        missing_view += not view
        if side:
            selection.lateralities.add(side)
        by_view[(side, view)].append((path, ds))
    if missing_side or missing_view:
        absent = " and ".join(
            name for name, count in (("laterality", missing_side), ("view", missing_view)) if count
        )
        selection.notes.append(
            f"mammography: {absent} tags missing on {max(missing_side, missing_view)} image(s); shown as unknown"
        )
    standard = [key for key in _MAMMO_ORDER if key in by_view]
    if len(standard) < 4:
        have = ", ".join(f"{s} {v}" for s, v in standard) or "none"
        selection.notes.append(f"mammography: {len(standard)} of 4 standard views present ({have})")
    ordered = sorted(by_view, key=lambda key: (_MAMMO_ORDER.get(key, 4), key))
    for key in ordered:
        members = sorted(by_view[key], key=lambda item: _instance_number(item[1]))
        if key in _MAMMO_ORDER:
            members = members[-1:]  # a repeated view: the last one taken is the one kept
        side, view = key
        label = f"{side or 'side unknown'} {view or 'view unknown'}"
        for path, ds in members:
            selection.frames.append(Frame(path, ds, 0, label))


def _series_size(members: list[tuple[Path, Dataset]]) -> int:
    return sum(number_of_frames(ds) for _, ds in members if not _is_localizer(ds))


def _series_record(members: list[tuple[Path, Dataset]], shown: int, total: int) -> dict[str, Any]:
    """What the draft records about the chosen series: no UIDs in the clear, no patient data."""
    from radassist.logging import short_hash

    ds = members[0][1]
    number: int | None
    try:
        number = int(ds.get("SeriesNumber")) if ds.get("SeriesNumber") not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    return {
        "series_uid_hash": short_hash(str(ds.get("SeriesInstanceUID", ""))),
        "series_number": number,
        "series_description": " ".join(str(ds.get("SeriesDescription", "") or "").split()) or None,
        "modality": _text(ds, "Modality") or None,
        "slices_total": total,
        "slices_shown": shown,
        "enhanced": any("PerFrameFunctionalGroupsSequence" in d for _, d in members),
    }


def _volume_frames(items: list[tuple[Path, Dataset]], max_slices: int, selection: Selection) -> None:
    """The largest series (localizers aside), sorted along its slice normal, sampled evenly."""
    series: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path, ds in items:
        series[str(ds.get("SeriesInstanceUID", ""))].append((path, ds))
    chosen = max(series.values(), key=_series_size)
    if len(series) > 1:
        selection.notes.append(f"volume: largest of {len(series)} series shown")
    entries: list[tuple[float | None, int, Path, Dataset, int]] = []
    has_images = _series_size(chosen) > 0
    for path, ds in chosen:
        if _is_localizer(ds) and has_images:
            continue
        frames = number_of_frames(ds)
        for index in range(frames):
            key = _slice_key(ds, index if frames > 1 or "PerFrameFunctionalGroupsSequence" in ds else None)
            entries.append((key, _instance_number(ds) * 100000 + index, path, ds, index))
    if all(key is not None for key, *_ in entries):
        entries.sort(key=lambda e: (e[0], e[1]))
    else:
        selection.notes.append("no slice positions; ordered by instance number")
        entries.sort(key=lambda e: e[1])
    picked = sample_evenly(len(entries), max_slices)
    if len(picked) < len(entries):
        selection.notes.append(f"{len(picked)} of {len(entries)} slices shown")
    for rank, i in enumerate(picked, start=1):
        _, _, path, ds, index = entries[i]
        side = laterality(ds)
        if side:
            selection.lateralities.add(side)
        selection.frames.append(Frame(path, ds, index, f"slice {rank} of {len(picked)}"))
    selection.series_chosen = _series_record(chosen, len(picked), len(entries))


def select_frames(
    items: Sequence[tuple[Path, Dataset]], max_images: int, max_slices: int | None = None
) -> Selection:
    """The frames to show (at most ``max_images``; ``max_slices`` of a volume), in reading order."""
    selection = Selection()
    images = [(path, ds) for path, ds in items if is_image(ds)]
    skipped = len(items) - len(images)
    if skipped:
        selection.notes.append(f"{skipped} non-image object(s) skipped")
    by_kind: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path, ds in images:
        modality = str(ds.get("Modality", "")).upper()
        if modality == "MG":
            by_kind["mammography"].append((path, ds))
        elif modality in PROJECTION_MODALITIES:
            by_kind["projection"].append((path, ds))
        elif modality in VOLUME_MODALITIES:
            by_kind["volume"].append((path, ds))
        else:
            by_kind["other"].append((path, ds))
    if by_kind["mammography"]:
        _mammography_frames(by_kind["mammography"], selection)
    if by_kind["projection"]:
        _projection_frames(by_kind["projection"], selection)
    if by_kind["volume"]:
        _volume_frames(by_kind["volume"], max_slices or max_images, selection)
    for path, ds in sorted(by_kind["other"], key=lambda item: _instance_number(item[1])):
        for index in sample_evenly(number_of_frames(ds), MAX_FRAMES_PER_CLIP):
            selection.frames.append(Frame(path, ds, index))
    if len(selection.frames) > max_images:
        selection.notes.append(f"{max_images} of {len(selection.frames)} candidate images shown")
        del selection.frames[max_images:]
    return selection
