"""Boxes in an answer, placed on the kept pictures the model saw.

A model that localises (:mod:`radassist.grounding.registry`) may answer "where is the nodule?" with
a box in its own grammar.  The box is read by that grammar's parser (markup leaves the answer's
words), then carried from the picture the model's encoder saw back to the kept picture by undoing
the processor's own resize or crop (:mod:`radassist.grounding.processors`), and stored as fractions
of the kept picture's width and height, which the study page draws over it.  A box that lies off the
picture by more than the grounding tolerance is dropped and counted, never moved; a model that
does not localise, or whose processor's sizing is not known, keeps its answer as written.

The kept picture is the same one the draft's own grounding maps to the source image (its
``PictureGeometry``); where the draft's pictures carry geometry, a box here can be mapped onto the
source frame the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from radassist.grounding.boxes import Box, CoordinateSpace
from radassist.grounding.geometry import DEFAULT_TOLERANCE, Size, Step
from radassist.grounding.registry import BoxGrammar, parser_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlacedAnswer:
    """The answer's words without box markup, its boxes on the kept pictures, and what was dropped."""

    text: str
    boxes: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Warning codes of box markup that could not be kept (structure only, never the model's words)."""


def on_kept_picture(box: Box, kept: Size, steps: Sequence[Step]) -> tuple[float, float, float, float] | None:
    """The box as fractions (x_min, y_min, x_max, y_max) of the kept picture, or None when it lies off it."""
    model = steps[-1].after if steps else kept
    scale_x, scale_y = (model.width, model.height) if box.space is CoordinateSpace.MODEL_NORMALISED else (1.0, 1.0)
    x0, y0, x1, y1 = box.x_min * scale_x, box.y_min * scale_y, box.x_max * scale_x, box.y_max * scale_y
    for step in reversed(steps):
        x0, y0 = step.to_before(x0, y0)
        x1, y1 = step.to_before(x1, y1)
    fx0, fy0, fx1, fy1 = x0 / kept.width, y0 / kept.height, x1 / kept.width, y1 / kept.height
    if min(fx0, fy0) < -DEFAULT_TOLERANCE or max(fx1, fy1) > 1 + DEFAULT_TOLERANCE:
        return None
    fx0, fy0, fx1, fy1 = max(fx0, 0.0), max(fy0, 0.0), min(fx1, 1.0), min(fy1, 1.0)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    return round(fx0, 5), round(fy0, 5), round(fx1, 5), round(fy1, 5)


def place_boxes(text: str, grammar: BoxGrammar | None, pictures: Sequence[Size], labels: Sequence[str],
                steps_for: Callable[[Size], tuple[Step, ...]]) -> PlacedAnswer:
    """Read the answer's boxes in ``grammar`` and place them on the kept ``pictures`` (see the module doc)."""
    if grammar is None:
        return PlacedAnswer(text)
    parsed = parser_for(grammar)(text)
    dropped = [w.code for w in parsed.warnings]
    if not parsed.grounded:
        return PlacedAnswer(text if not parsed.findings and not dropped else parsed.text, [], dropped)
    boxes: list[dict[str, Any]] = []
    for finding in parsed.grounded:
        for box in finding.boxes:
            if box.picture >= len(pictures):
                dropped.append("grounding.box.picture")
                continue
            try:
                placed = on_kept_picture(box, pictures[box.picture], steps_for(pictures[box.picture]))
            except ValueError:  # the processor's sizing is not known: nothing can be drawn
                return PlacedAnswer(parsed.text, [], [*dropped, "grounding.processor.unknown"])
            if placed is None:
                dropped.append("grounding.box.outside_image")
                continue
            label = labels[box.picture] if box.picture < len(labels) else ""
            boxes.append({"picture": box.picture, "picture_label": label, "finding": finding.text[:200],
                          "x_min": placed[0], "y_min": placed[1], "x_max": placed[2], "y_max": placed[3]})
    if dropped:
        logger.info("%d box(es) of an answer could not be placed", len(dropped))
    return PlacedAnswer(parsed.text, boxes, dropped)
