"""The model-facing contract: stored DICOM files in, a few display-ready pictures plus context out.

``prepare_study`` is all the worker calls.  Everything the model sees goes through here, so the
SR can name exactly which instances were used (``source_sop_instance_uids``) and the notes can
say what was left out.

Headers are parsed with Pixel Data deferred, the frames to show are chosen from headers alone, and
only those frames are decoded -- straight from their files, each reduced to the model's
resolution as it is read.  A 300-slice CT shown as 8 slices decodes 8 slices, and the study never
exists in memory as a decoded volume.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radassist.errors import PermanentFailure
from radassist.grounding.geometry import PictureGeometry, Size, Step
from radassist.imaging.context import ClinicalContext, clinical_context
from radassist.imaging.geometry import fit_picture, picture_geometry
from radassist.imaging.pixels import WindowMode, check_windows, frame_pictures
from radassist.imaging.select import Frame, select_frames

logger = logging.getLogger(__name__)

# Values larger than this are read from disk only when touched (pixel data of frames not shown).
_DEFER_BYTES = 64 * 1024
# Threads that decode, window and resize the chosen frames at once.
DECODE_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class PreparedStudy:
    """What the model gets: images in reading order and the clinical context, plus provenance."""

    images: tuple[Image.Image, ...]
    context: ClinicalContext
    source_sop_instance_uids: tuple[str, ...]
    notes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    """One per image: ``R CC``, ``PA``, ``slice 3 of 8 (lung window)``..."""
    series_chosen: dict[str, Any] | None = None
    """The volume series shown (hashed UID, number, description, slices): stored with the draft."""
    lateralities: frozenset[str] = frozenset()
    """ImageLaterality/Laterality values of the images shown (``R``, ``L``, ``B``)."""
    geometries: tuple[PictureGeometry, ...] = ()
    """Where each picture came from and how it was made (source frame, resize, padding), by its
    index in ``images``: what maps a box the model draws back onto the source image.  A picture
    whose geometry cannot be stated has none."""


@dataclass(frozen=True)
class RenderOptions:
    """How a study is turned into pictures; chosen per study (by its prompt profile) from its context."""

    windows: tuple[str, ...] = ()
    window_mode: WindowMode = "channels"
    max_slices: int | None = None


def _read(path: Path) -> Dataset | None:
    try:
        return dcmread(path, defer_size=_DEFER_BYTES)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        # A file we stored ourselves should parse; say which kind of failure, never its content.
        logger.warning("stored file could not be parsed (%s); skipped", type(exc).__name__)
        return None


def _one_per_series(items: Sequence[tuple[Path, Dataset]]) -> list[Dataset]:
    """The first instance of each series: patient, study and series attributes are shared within a
    series, so reading them from 300 slices would only cost time."""
    seen: dict[str, Dataset] = {}
    for _, ds in items:
        seen.setdefault(str(ds.get("SeriesInstanceUID", "")), ds)
    return list(seen.values())


def _read_all(paths: Sequence[Path]) -> tuple[list[tuple[Path, Dataset]], int]:
    """Every readable file's header (pixel data deferred), and how many could not be read."""
    items: list[tuple[Path, Dataset]] = []
    unreadable = 0
    for path in paths:
        ds = _read(Path(path))
        if ds is None:
            unreadable += 1
        else:
            items.append((Path(path), ds))
    return items, unreadable


Rendered = list[tuple[Image.Image, Size, tuple[Step, ...]]]
"""A frame's pictures, each with the decoded frame's size and the steps from it to the picture."""


def _render_all(frames: Sequence[Frame], windows: tuple[str, ...], window_mode: WindowMode,
                image_size: int, square: bool) -> list[Rendered | PermanentFailure]:
    """Each frame as its pictures (one per window in ``images`` mode), or why it could not be decoded.

    Decoding, windowing and resizing release the GIL for most of their time: a few threads
    overlap them (and the file reads); each holds one slice, so memory stays a few slices.
    """

    def render(frame: Frame) -> Rendered | PermanentFailure:
        try:
            pictures = frame_pictures(frame.dataset, frame.frame, windows=windows, window_mode=window_mode,
                                      path=frame.path)
        except PermanentFailure as exc:
            return exc
        rendered: Rendered = []
        for picture in pictures:
            shown, steps = fit_picture(picture, image_size, square=square)
            rendered.append((shown, Size(*picture.size), steps))
        return rendered

    threads = min(DECODE_THREADS, len(frames))
    if threads <= 1:
        return [render(frame) for frame in frames]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="radassist-decode") as pool:
        return list(pool.map(render, frames))


@dataclass
class _Shown:
    """The pictures in reading order, one label each, the instances they came from, what failed."""

    images: list[Image.Image] = dataclasses.field(default_factory=list)
    labels: list[str] = dataclasses.field(default_factory=list)
    uids: list[str] = dataclasses.field(default_factory=list)
    failures: list[PermanentFailure] = dataclasses.field(default_factory=list)
    geometries: list[PictureGeometry] = dataclasses.field(default_factory=list)
    windowed: bool = False


def _collect(frames: Sequence[Frame], rendered: list[Rendered | PermanentFailure],
             windows: tuple[str, ...]) -> _Shown:
    shown = _Shown()
    for frame, result in zip(frames, rendered, strict=True):
        if isinstance(result, PermanentFailure):
            shown.failures.append(result)
            continue
        if windows and str(frame.dataset.get("Modality", "")).upper() == "CT":
            shown.windowed = True
        for index, (picture, decoded, steps) in enumerate(result):
            geometry = picture_geometry(frame.dataset, frame.frame, len(shown.images), decoded, steps)
            if geometry is not None:
                shown.geometries.append(geometry)
            shown.images.append(picture)
            label = frame.label
            if len(result) > 1:
                label = f"{label} ({windows[index].replace('_', ' ')} window)".strip()
            shown.labels.append(label)
        uid = str(frame.dataset.get("SOPInstanceUID", ""))
        if uid and uid not in shown.uids:
            shown.uids.append(uid)
        logger.debug("showing frame %d of %s", frame.frame, uid)
    return shown


def _window_note(windows: tuple[str, ...], window_mode: WindowMode) -> str:
    if window_mode == "channels":
        packed = (list(windows) + [windows[-1]] * 3)[:3]
        return f"CT windows packed as R/G/B: {', '.join(packed)}"
    return f"CT windows as separate images: {', '.join(windows)}"


def prepare_study(
    paths: Sequence[Path],
    *,
    image_size: int,
    max_images: int,
    max_slices: int | None = None,
    windows: Sequence[str] = (),
    window_mode: WindowMode = "channels",
    resolve: Callable[[ClinicalContext], RenderOptions] | None = None,
    square: bool = False,
) -> PreparedStudy:
    """Read a study's stored files and return the images the model should see, with context.

    ``max_slices`` (default ``max_images``) is the slice budget of a CT/MR volume; ``windows``
    names CT windows (``lung``, ``soft_tissue``, ``bone``...) shown per slice as packed channels
    or as separate images (``window_mode``).  No more than ``max_images`` images are returned.
    ``resolve``, when given, picks those three from the study's clinical context instead (the
    worker passes its prompt-profile choice), after the headers are read and before any decoding.
    ``square`` pads each picture to a centred square (black) after shrinking it; each picture's
    steps are recorded in ``geometries``.

    Raises ``PermanentFailure`` ``imaging.no_images`` when nothing is an image, and
    ``dicom.undecodable`` when there are images but none of them could be decoded.
    """
    if max_images < 1:
        raise ValueError("max_images: must be at least 1")
    if max_slices is not None and max_slices < 1:
        raise ValueError("max_slices: must be at least 1")
    items, unreadable = _read_all(paths)
    context = clinical_context(_one_per_series(items))
    if resolve is not None:
        options = resolve(context)
        windows, window_mode, max_slices = options.windows, options.window_mode, options.max_slices
    checked = check_windows(windows)
    per_frame = len(checked) if checked and window_mode == "images" else 1
    frame_budget = max(1, max_images // per_frame)
    selection = select_frames(items, frame_budget, min(max_slices or frame_budget, frame_budget))
    notes = selection.notes
    if unreadable:
        notes.insert(0, f"{unreadable} unreadable file(s) skipped")
    if not selection.frames:
        raise PermanentFailure("the study holds no image the model can read", code="imaging.no_images")
    rendered = _render_all(selection.frames, checked, window_mode, image_size, square)
    shown = _collect(selection.frames, rendered, checked)
    if shown.failures:
        notes.append(f"{len(shown.failures)} image(s) could not be decoded")
    if not shown.images:
        raise PermanentFailure(shown.failures[0].message, code="dicom.undecodable")
    if shown.windowed:
        notes.append(_window_note(checked, window_mode))
    chosen = selection.series_chosen
    if chosen:
        context = dataclasses.replace(context, series_description=chosen["series_description"])
        logger.info("series chosen: number %s (%s), %d of %d slices", chosen["series_number"],
                    chosen["series_uid_hash"], chosen["slices_shown"], chosen["slices_total"])
    return PreparedStudy(
        images=tuple(shown.images),
        context=context,
        source_sop_instance_uids=tuple(shown.uids),
        notes=tuple(notes),
        labels=tuple(shown.labels),
        series_chosen=chosen,
        lateralities=frozenset(selection.lateralities),
        geometries=tuple(shown.geometries),
    )
