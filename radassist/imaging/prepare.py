"""The model-facing contract: stored DICOM files in, a few display-ready pictures plus context out.

``prepare_study`` is all the worker calls.  Everything the model sees goes through here, so the
SR can name exactly which instances were used (``source_sop_instance_uids``) and the notes can
say what was left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radassist.errors import PermanentFailure
from radassist.imaging.context import ClinicalContext, clinical_context
from radassist.imaging.pixels import frame_to_rgb, to_image
from radassist.imaging.select import select_frames

logger = logging.getLogger(__name__)

# Values larger than this are read from disk only when touched (pixel data of frames not shown).
_DEFER_BYTES = 64 * 1024


@dataclass(frozen=True)
class PreparedStudy:
    """What the model gets: images in reading order and the clinical context, plus provenance."""

    images: tuple[Image.Image, ...]
    context: ClinicalContext
    source_sop_instance_uids: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _read(path: Path) -> Dataset | None:
    try:
        return dcmread(path, defer_size=_DEFER_BYTES)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        # A file we stored ourselves should parse; say which kind of failure, never its content.
        logger.warning("stored file could not be parsed (%s); skipped", type(exc).__name__)
        return None


def prepare_study(paths: Sequence[Path], *, image_size: int, max_images: int) -> PreparedStudy:
    """Read a study's stored files and return the images the model should see, with context.

    Raises ``PermanentFailure`` ``imaging.no_images`` when nothing is an image, and
    ``dicom.undecodable`` when there are images but none of them could be decoded.
    """
    if max_images < 1:
        raise ValueError("max_images: must be at least 1")
    items: list[tuple[Path, Dataset]] = []
    unreadable = 0
    for path in paths:
        ds = _read(Path(path))
        if ds is None:
            unreadable += 1
        else:
            items.append((Path(path), ds))
    frames, notes = select_frames(items, max_images)
    if unreadable:
        notes.insert(0, f"{unreadable} unreadable file(s) skipped")
    if not frames:
        raise PermanentFailure("the study holds no image the model can read", code="imaging.no_images")

    images: list[Image.Image] = []
    uids: list[str] = []
    failures: list[PermanentFailure] = []
    for frame in frames:
        try:
            rgb = frame_to_rgb(frame.dataset, frame.frame)
        except PermanentFailure as exc:
            failures.append(exc)
            continue
        images.append(to_image(rgb, image_size))
        uid = str(frame.dataset.get("SOPInstanceUID", ""))
        if uid and uid not in uids:
            uids.append(uid)
        logger.debug("showing frame %d of %s", frame.frame, uid)
    if failures:
        notes.append(f"{len(failures)} image(s) could not be decoded")
    if not images:
        raise PermanentFailure(failures[0].message, code="dicom.undecodable")
    return PreparedStudy(
        images=tuple(images),
        context=clinical_context(ds for _, ds in items),
        source_sop_instance_uids=tuple(uids),
        notes=tuple(notes),
    )
