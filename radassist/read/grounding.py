"""The study page's boxes: the grounded findings of the latest draft, drawn on the images the model saw.

Read from the grounding record stored with the draft (:mod:`radassist.grounding.record`): one
picture per source frame the model was shown, in the order it saw them, each with the boxes that
lie on it in the frame's own pixel coordinates, so the page draws them over the frame's thumbnail
with an SVG whose view box is the frame (Columns x Rows).  Grounded findings are numbered as the
measurement report numbers them ("AI finding 2"), so the page and the viewer agree.  A record that
cannot be read shows as such, never as boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from radassist.grounding.record import recorded_findings, recorded_pictures, recorded_warnings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroundedBox:
    """One box on a frame, in the frame's pixels ((0, 0) is the top-left corner of the top-left pixel)."""

    finding: int
    """The 1-based number of its grounded finding."""
    text: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class GroundedPicture:
    """A source frame the model saw, and the boxes on it."""

    sop_instance_uid: str
    frame_number: int
    columns: int
    rows: int
    boxes: tuple[GroundedBox, ...] = ()

    @property
    def stroke(self) -> float:
        """A line width that shows at thumbnail size whatever the frame's size."""
        return round(max(self.columns, self.rows) / 120, 2)

    @property
    def font_size(self) -> float:
        return round(max(self.columns, self.rows) / 14, 2)


@dataclass(frozen=True, slots=True)
class GroundedFindingRow:
    number: int
    text: str
    boxes: int


@dataclass(frozen=True, slots=True)
class GroundingView:
    """What the page shows of a grounded draft (``readable`` False: the record could not be read)."""

    grammar: str
    pictures: tuple[GroundedPicture, ...] = ()
    findings: tuple[GroundedFindingRow, ...] = ()
    warnings: tuple[str, ...] = ()
    """Each dropped box, as its code and what was wrong (never the model's words)."""
    readable: bool = True


def _warning_line(code: str, detail: str, finding: int | None, box: int | None) -> str:
    where = ", ".join(part for part in (
        f"finding {finding + 1}" if finding is not None else "", f"box {box + 1}" if box is not None else "") if part)
    return f"{code}: {detail}" + (f" ({where})" if where else "")


def grounding_view(generation: Mapping[str, Any]) -> GroundingView | None:
    """The grounding of a draft's generation record; None when the draft was not grounded."""
    record = generation.get("grounding")
    if record is None:
        return None
    grammar = str(record.get("grammar", "")) if isinstance(record, Mapping) else ""
    try:
        pictures, findings = recorded_pictures(record), recorded_findings(record)
        warnings = recorded_warnings(record)
    except (ValueError, TypeError) as exc:
        logger.warning("a draft's grounding record cannot be read (%s)", type(exc).__name__)
        return GroundingView(grammar=grammar, readable=False)
    frames: dict[tuple[str, int], GroundedPicture] = {}
    for geometry in pictures:
        key = (geometry.sop_instance_uid, geometry.frame_number)
        frames.setdefault(key, GroundedPicture(key[0], key[1], geometry.columns, geometry.rows))
    boxes: dict[tuple[str, int], list[GroundedBox]] = {key: [] for key in frames}
    rows: list[GroundedFindingRow] = []
    for finding in (f for f in findings if f.boxes):
        number = len(rows) + 1
        rows.append(GroundedFindingRow(number, finding.text, len(finding.boxes)))
        for box in finding.boxes:
            key = (box.sop_instance_uid, box.frame_number)
            if key in boxes:
                boxes[key].append(GroundedBox(number, finding.text, box.x_min, box.y_min, box.x_max - box.x_min,
                                              box.y_max - box.y_min))
    shown = tuple(GroundedPicture(p.sop_instance_uid, p.frame_number, p.columns, p.rows, tuple(boxes[key]))
                  for key, p in frames.items())
    return GroundingView(
        grammar=grammar,
        pictures=shown,
        findings=tuple(rows),
        warnings=tuple(_warning_line(w.code, w.detail, w.finding, w.box) for w in warnings),
    )
