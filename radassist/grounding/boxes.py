"""What a grounding parser returns: findings, their boxes in the model's picture, and warnings.

A box is kept only when the model wrote it completely and sensibly; anything else is dropped and
named in a :class:`GroundingWarning`, never repaired or guessed.  Warnings are returned to the
caller (who stores or counts them); they carry structure only -- which finding, which box, which
rule -- and never the model's text, which may quote patient details.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from radassist.coded import CodedLabel


class CoordinateSpace(StrEnum):
    """What a box's numbers measure."""

    MODEL_PIXELS = "model_pixels"
    """Pixels of the picture as the model's processor handed it to the vision encoder."""
    MODEL_NORMALISED = "model_normalised"
    """Fractions (0..1) of the width and height of that picture."""


# Stable warning codes (stored with a draft, counted in metrics).
BOX_ARITY = "grounding.box.arity"
BOX_NON_NUMERIC = "grounding.box.non_numeric"
BOX_OUT_OF_RANGE = "grounding.box.out_of_range"
BOX_INVERTED = "grounding.box.inverted"
BOX_EMPTY = "grounding.box.empty"
BOX_UNTERMINATED = "grounding.box.unterminated"
BOX_MALFORMED = "grounding.box.malformed"
BOX_UNLABELLED = "grounding.box.unlabelled"
BOX_PICTURE = "grounding.box.picture"
BOX_OUTSIDE_PHRASE = "grounding.box.outside_phrase"
BOX_OUTSIDE_IMAGE = "grounding.box.outside_image"
JSON_UNTERMINATED = "grounding.json.unterminated"
JSON_INVALID = "grounding.json.invalid"
PHRASE_UNTERMINATED = "grounding.phrase.unterminated"


@dataclass(frozen=True)
class GroundingWarning:
    """One piece of grounding markup that was dropped, and why.

    ``detail`` describes the structure (``"3 coordinates"``), never the model's words.
    ``finding`` and ``box`` are 0-based positions when known.
    """

    code: str
    detail: str
    finding: int | None = None
    box: int | None = None


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in one picture shown to the model.

    ``x`` runs along columns (left to right), ``y`` along rows (top to bottom); (0, 0) is the
    top-left corner of the top-left pixel, so a box covering pixel columns 10..19 spans
    ``x_min=10, x_max=20``.  ``picture`` is the 0-based index of the picture among those shown.
    """

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    space: CoordinateSpace
    picture: int = 0

    def __post_init__(self) -> None:
        for name in ("x_min", "y_min", "x_max", "y_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f'Argument "{name}" must be a finite number.')
        if self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise ValueError('Arguments "x_max" and "y_max" must exceed "x_min" and "y_min".')
        if not isinstance(self.picture, int) or isinstance(self.picture, bool) or self.picture < 0:
            raise ValueError('Argument "picture" must be a non-negative integer.')
        object.__setattr__(self, "space", CoordinateSpace(self.space))


@dataclass(frozen=True)
class GroundedFinding:
    """One finding as the model wrote it (markup removed) and the boxes it drew for it.

    A finding without boxes is ungrounded: it belongs in the report text but not on the image.
    """

    text: str
    boxes: tuple[Box, ...] = ()
    code: CodedLabel | None = None


@dataclass(frozen=True)
class ParsedReport:
    """A model's output read by one grammar.

    ``text`` is what goes in the report: the model's words without any box markup.
    """

    text: str
    findings: tuple[GroundedFinding, ...] = ()
    warnings: tuple[GroundingWarning, ...] = field(default=())

    @property
    def grounded(self) -> tuple[GroundedFinding, ...]:
        """The findings that kept at least one box."""
        return tuple(f for f in self.findings if f.boxes)


def check_corners(
    values: Sequence[float], *, finding: int | None, box: int | None, upper: float | None = None
) -> GroundingWarning | None:
    """The warning that rules out ``(x_min, y_min, x_max, y_max)``, or None when it is a box.

    ``values`` must already be numbers; ``upper`` (inclusive) bounds them when the grammar has a
    fixed range.  Negative values are out of range in every grammar.
    """
    if len(values) != 4:
        return GroundingWarning(BOX_ARITY, f"{len(values)} coordinates", finding, box)
    if any(v < 0 or (upper is not None and v > upper) for v in values):
        return GroundingWarning(BOX_OUT_OF_RANGE, "a coordinate outside the grammar's range", finding, box)
    x_min, y_min, x_max, y_max = values
    if x_max < x_min or y_max < y_min:
        return GroundingWarning(BOX_INVERTED, "a maximum below its minimum", finding, box)
    if x_max == x_min or y_max == y_min:
        return GroundingWarning(BOX_EMPTY, "zero width or height", finding, box)
    return None


def is_number(value: object) -> bool:
    """A JSON number we accept as a coordinate: int or float, finite, not a boolean."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False
