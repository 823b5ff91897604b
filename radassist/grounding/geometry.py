"""Where a picture shown to the model came from, and how a box on it maps back to the source image.

A :class:`PictureGeometry` names the source frame (SOP Instance UID, 1-based frame number, its
Columns and Rows) and lists every step that turned that frame into the picture the model's
vision encoder saw: our own crop, padding and resize to ``[model] image_size``, then the model
processor's resize or crop.  Each step records the sizes it saw, so undoing it needs no formula
of the library that did it.

Coordinates
-----------
All coordinates are continuous image coordinates as DICOM SCOORD uses them (PS3.3 C.18.6.1.1):
``(0, 0)`` is the top-left corner of the top-left pixel, ``(Columns, Rows)`` the bottom-right
corner of the bottom-right pixel, so pixel ``(column c, row r)`` (0-based) covers ``[c, c + 1) x
[r, r + 1)`` and its centre is ``(c + 0.5, r + 0.5)``.  A box's edges lie on pixel boundaries in
this convention; a resize by a factor ``s`` maps ``x`` to ``s * x`` exactly (as PIL and the
transformers processors sample pixel centres), and a crop or pad shifts by whole pixels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from radassist.coded import CodedLabel
from radassist.grounding.boxes import (
    BOX_OUTSIDE_IMAGE,
    BOX_PICTURE,
    Box,
    CoordinateSpace,
    GroundedFinding,
    GroundingWarning,
)

DEFAULT_TOLERANCE = 0.02
"""How far (as a fraction of the source's width or height) a box may overhang the image and still
be clipped to it rather than dropped: models round, and a box drawn to a picture's edge maps to a
few source pixels beyond it."""


def _positive(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'Argument "{name}" must be a positive integer.')


def _non_negative(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'Argument "{name}" must be a non-negative integer.')


@dataclass(frozen=True)
class Size:
    """A picture's width (columns) and height (rows) in pixels."""

    width: int
    height: int

    def __post_init__(self) -> None:
        _positive(self.width, "width")
        _positive(self.height, "height")


@dataclass(frozen=True)
class Crop:
    """Keeps ``width`` x ``height`` pixels of its input, starting at column ``left``, row ``top``."""

    before: Size
    left: int
    top: int
    width: int
    height: int

    def __post_init__(self) -> None:
        _non_negative(self.left, "left")
        _non_negative(self.top, "top")
        _positive(self.width, "width")
        _positive(self.height, "height")
        if self.left + self.width > self.before.width or self.top + self.height > self.before.height:
            raise ValueError('Argument "before" is smaller than the crop.')

    @property
    def after(self) -> Size:
        return Size(self.width, self.height)

    def to_before(self, x: float, y: float) -> tuple[float, float]:
        return x + self.left, y + self.top


@dataclass(frozen=True)
class Pad:
    """Adds ``left``, ``top``, ``right`` and ``bottom`` pixels of fill around its input."""

    before: Size
    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        for name in ("left", "top", "right", "bottom"):
            _non_negative(getattr(self, name), name)

    @property
    def after(self) -> Size:
        return Size(self.before.width + self.left + self.right, self.before.height + self.top + self.bottom)

    def to_before(self, x: float, y: float) -> tuple[float, float]:
        return x - self.left, y - self.top


@dataclass(frozen=True)
class Resize:
    """Scales its input to ``after`` (each axis on its own: aspect ratio may change)."""

    before: Size
    after: Size

    def to_before(self, x: float, y: float) -> tuple[float, float]:
        return x * self.before.width / self.after.width, y * self.before.height / self.after.height


Step = Crop | Pad | Resize


def pad_to_square(size: Size) -> Pad:
    """The centred padding that makes ``size`` square (odd remainders go right and bottom)."""
    side = max(size.width, size.height)
    left, top = (side - size.width) // 2, (side - size.height) // 2
    return Pad(size, left, top, side - size.width - left, side - size.height - top)


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


@dataclass(frozen=True)
class PictureGeometry:
    """One picture shown to the model: its source frame and the steps from that frame to the picture.

    ``picture`` is the 0-based position of the picture among those shown (boxes name it);
    ``frame_number`` is 1-based, as DICOM's Referenced Frame Number.
    """

    sop_instance_uid: str
    frame_number: int
    columns: int
    rows: int
    picture: int
    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        uid = self.sop_instance_uid
        if not isinstance(uid, str) or len(uid) > 64 or not _UID.fullmatch(uid):
            raise ValueError('Argument "sop_instance_uid" is not a valid DICOM UID.')
        _positive(self.frame_number, "frame_number")
        _positive(self.columns, "columns")
        _positive(self.rows, "rows")
        _non_negative(self.picture, "picture")
        if not isinstance(self.steps, tuple):
            raise TypeError('Argument "steps" must be a tuple.')
        size = Size(self.columns, self.rows)
        for index, step in enumerate(self.steps):
            if not isinstance(step, (Crop, Pad, Resize)):
                raise TypeError(f'Item {index} of argument "steps" is not a Crop, Pad or Resize.')
            if step.before != size:
                raise ValueError(f'Item {index} of argument "steps" starts from a size its predecessor did not give.')
            size = step.after

    @property
    def model_size(self) -> Size:
        """The size of the picture the model saw (after the last step)."""
        return self.steps[-1].after if self.steps else Size(self.columns, self.rows)

    def then(self, *steps: Step) -> PictureGeometry:
        """This geometry with ``steps`` appended (recorded as preparation goes on)."""
        return PictureGeometry(
            self.sop_instance_uid, self.frame_number, self.columns, self.rows, self.picture, self.steps + steps
        )


@dataclass(frozen=True)
class SourceBox:
    """A box on a source frame, in DICOM image coordinates (see the module docstring).

    ``clipped`` says the model's box overhung the image (within the tolerance) and was cut to it.
    """

    sop_instance_uid: str
    frame_number: int
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    clipped: bool = False

    def polyline(self) -> tuple[tuple[float, float], ...]:
        """The box as a closed POLYLINE (first point repeated last), clockwise on screen from top-left."""
        top_left = (self.x_min, self.y_min)
        return (top_left, (self.x_max, self.y_min), (self.x_max, self.y_max), (self.x_min, self.y_max), top_left)


def to_source(
    box: Box, geometry: PictureGeometry, *, tolerance: float = DEFAULT_TOLERANCE, finding: int | None = None,
    index: int | None = None,
) -> SourceBox | GroundingWarning:
    """Map ``box`` from the model's picture back to the source frame of ``geometry``.

    Every step is undone in reverse order.  A box that overhangs the image by at most ``tolerance``
    of its width or height is clipped to it; a box further out, or nothing left after clipping,
    is dropped: the result is then a :class:`GroundingWarning` (``finding``/``index`` name it).
    """
    if not isinstance(box, Box) or not isinstance(geometry, PictureGeometry):
        raise TypeError('Arguments "box" and "geometry" must be a Box and a PictureGeometry.')
    if box.picture != geometry.picture:
        raise ValueError('Argument "geometry" describes another picture than the box names.')
    if not 0 <= tolerance < 1:
        raise ValueError('Argument "tolerance" must be at least 0 and below 1.')
    scale_x = scale_y = 1.0
    if box.space is CoordinateSpace.MODEL_NORMALISED:
        scale_x, scale_y = geometry.model_size.width, geometry.model_size.height
    x0, y0 = box.x_min * scale_x, box.y_min * scale_y
    x1, y1 = box.x_max * scale_x, box.y_max * scale_y
    for step in reversed(geometry.steps):
        x0, y0 = step.to_before(x0, y0)
        x1, y1 = step.to_before(x1, y1)
    slack_x, slack_y = tolerance * geometry.columns, tolerance * geometry.rows
    if x0 < -slack_x or y0 < -slack_y or x1 > geometry.columns + slack_x or y1 > geometry.rows + slack_y:
        return GroundingWarning(BOX_OUTSIDE_IMAGE, "beyond the source image's edge", finding, index)
    clipped_x0, clipped_y0 = max(x0, 0.0), max(y0, 0.0)
    clipped_x1, clipped_y1 = min(x1, float(geometry.columns)), min(y1, float(geometry.rows))
    if clipped_x1 <= clipped_x0 or clipped_y1 <= clipped_y0:
        return GroundingWarning(BOX_OUTSIDE_IMAGE, "nothing of it on the source image", finding, index)
    clipped = (clipped_x0, clipped_y0, clipped_x1, clipped_y1) != (x0, y0, x1, y1)
    return SourceBox(
        geometry.sop_instance_uid, geometry.frame_number, clipped_x0, clipped_y0, clipped_x1, clipped_y1, clipped
    )


@dataclass(frozen=True)
class MappedFinding:
    """A finding with its boxes on the source images (none: an ungrounded finding)."""

    text: str
    boxes: tuple[SourceBox, ...] = ()
    code: CodedLabel | None = None


@dataclass(frozen=True)
class MappedReport:
    findings: tuple[MappedFinding, ...]
    warnings: tuple[GroundingWarning, ...] = ()


def map_findings(
    findings: Sequence[GroundedFinding],
    geometries: Sequence[PictureGeometry],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> MappedReport:
    """Map every box of ``findings`` onto its source frame; boxes that cannot be are dropped with a warning.

    ``geometries`` holds one geometry per picture shown; a box naming a picture without one is
    dropped (``grounding.box.picture``).
    """
    by_picture: dict[int, PictureGeometry] = {}
    for item in geometries:
        if not isinstance(item, PictureGeometry):
            raise TypeError('Items of argument "geometries" must be PictureGeometry.')
        if item.picture in by_picture:
            raise ValueError('Argument "geometries" describes one picture twice.')
        by_picture[item.picture] = item
    mapped: list[MappedFinding] = []
    warnings: list[GroundingWarning] = []
    for number, finding in enumerate(findings):
        boxes: list[SourceBox] = []
        for index, box in enumerate(finding.boxes):
            geometry = by_picture.get(box.picture)
            if geometry is None:
                warnings.append(GroundingWarning(BOX_PICTURE, "a picture that was not shown", number, index))
                continue
            result = to_source(box, geometry, tolerance=tolerance, finding=number, index=index)
            if isinstance(result, SourceBox):
                boxes.append(result)
            else:
                warnings.append(result)
        mapped.append(MappedFinding(finding.text, tuple(boxes), finding.code))
    return MappedReport(tuple(mapped), tuple(warnings))
