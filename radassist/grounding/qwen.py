"""Qwen2.5-VL's grounding grammar: JSON objects ``{"bbox_2d": [x1, y1, x2, y2], "label": "..."}``.

Qwen2.5-VL writes boxes in absolute pixels of the picture *as its processor resized it* (the
``smart_resize`` size, multiples of 28), usually as a JSON list in a ```` ```json ```` fence, after
or instead of prose.  Each object is one box; objects with the same label are one finding with
several boxes.  An optional ``"image"`` key (1-based, as a prompt numbers the pictures) says which
picture the box is on; without it the box is on the first picture.

The report text is the prose without the JSON; when the model wrote only JSON, it is the labels,
one per line.  JSON that is cut off or broken keeps the complete objects inside it, each checked
like any other, and adds a warning; nothing is repaired.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from radassist.grounding.boxes import (
    BOX_MALFORMED,
    BOX_NON_NUMERIC,
    BOX_PICTURE,
    BOX_UNLABELLED,
    JSON_INVALID,
    JSON_UNTERMINATED,
    Box,
    CoordinateSpace,
    GroundedFinding,
    GroundingWarning,
    ParsedReport,
    check_corners,
    is_number,
)

# A fence left open (output cut off) runs to the end of the text.
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_KEY = '"bbox_2d"'
# A failed decode counts as broken box markup only when a box object's key follows its opening bracket.
_BROKEN_START = re.compile(r'[\[{][\s\[{]*"(?:bbox_2d|label)"')
_DECODER = json.JSONDecoder()


@dataclass
class _Scan:
    prose: list[str] = field(default_factory=list)
    objects: list[Any] = field(default_factory=list)
    warnings: list[GroundingWarning] = field(default_factory=list)


def _has_boxes(value: Any) -> bool:
    if isinstance(value, dict):
        return "bbox_2d" in value
    if isinstance(value, list):
        return any(isinstance(item, dict) and "bbox_2d" in item for item in value)
    return False


def _take(value: Any, scan: _Scan) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict) and "bbox_2d" in item:
            scan.objects.append(item)
        else:
            scan.warnings.append(GroundingWarning(BOX_MALFORMED, "a list item that is not a box object"))


def _salvage(markup: str, scan: _Scan) -> None:
    """Keep each complete box object of broken JSON; say once that the JSON was broken."""
    try:
        json.loads(markup)
    except json.JSONDecodeError as exc:
        ran_out = exc.pos >= len(markup.rstrip())
        scan.warnings.append(
            GroundingWarning(JSON_UNTERMINATED if ran_out else JSON_INVALID, f"JSON {exc.msg.lower()}")
        )
    start = markup.find("{")
    while start >= 0:
        try:
            value, end = _DECODER.raw_decode(markup, start)
        except json.JSONDecodeError:
            start = markup.find("{", start + 1)
            continue
        if isinstance(value, dict) and "bbox_2d" in value:
            scan.objects.append(value)
        start = markup.find("{", end)


def _read_block(block: str, scan: _Scan) -> None:
    """A fenced block: box JSON as a whole, or prose when it holds no box key."""
    if _KEY not in block:
        scan.prose.append(block)
        return
    stripped = block.strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        _salvage(stripped, scan)
        return
    _take(value, scan)


def _scan_prose(segment: str, scan: _Scan) -> None:
    """Unfenced text: JSON values holding boxes are markup, everything else is prose."""
    cursor = index = 0
    while index < len(segment):
        if segment[index] not in "[{":
            index += 1
            continue
        try:
            value, end = _DECODER.raw_decode(segment, index)
        except json.JSONDecodeError:
            if _BROKEN_START.match(segment, index):
                scan.prose.append(segment[cursor:index])
                _salvage(segment[index:], scan)
                return
            index += 1
            continue
        if _has_boxes(value):
            scan.prose.append(segment[cursor:index])
            _take(value, scan)
            cursor = index = end
        else:
            index += 1
    scan.prose.append(segment[cursor:])


def _clean(text: str) -> str:
    return " ".join(text.split())


def _tidy(prose: str) -> str:
    """Where markup was cut out: single spaces within a line, at most one blank line in a row."""
    lines = [" ".join(line.split()) for line in prose.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _picture(item: dict[str, Any]) -> int | None:
    image = item.get("image", 1)
    if isinstance(image, bool) or not isinstance(image, int) or image < 1:
        return None
    return image - 1


def _findings(objects: list[Any], warnings: list[GroundingWarning]) -> tuple[GroundedFinding, ...]:
    order: list[str] = []
    boxes: dict[str, list[Box]] = {}
    for index, item in enumerate(objects):
        label = item.get("label")
        if not isinstance(label, str) or not _clean(label):
            warnings.append(GroundingWarning(BOX_UNLABELLED, "a box without a label", None, index))
            continue
        text = _clean(label)
        if text not in boxes:
            order.append(text)
            boxes[text] = []
        finding = order.index(text)
        coords = item.get("bbox_2d")
        if not isinstance(coords, list) or not all(is_number(v) for v in coords):
            warnings.append(GroundingWarning(BOX_NON_NUMERIC, "coordinates that are not numbers", finding, index))
            continue
        problem = check_corners([float(v) for v in coords], finding=finding, box=index)
        if problem is not None:
            warnings.append(problem)
            continue
        picture = _picture(item)
        if picture is None:
            warnings.append(GroundingWarning(BOX_PICTURE, "an image number that is not 1, 2, ...", finding, index))
            continue
        x_min, y_min, x_max, y_max = (float(v) for v in coords)
        boxes[text].append(Box(x_min, y_min, x_max, y_max, CoordinateSpace.MODEL_PIXELS, picture))
    return tuple(GroundedFinding(text, tuple(boxes[text])) for text in order)


def parse_qwen(text: str) -> ParsedReport:
    """Read Qwen2.5-VL output: prose and JSON box objects (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError('Argument "text" must be a string.')
    scan = _Scan()
    position = 0
    for match in _FENCE.finditer(text):
        _scan_prose(text[position : match.start()], scan)
        _read_block(match.group(1), scan)
        position = match.end()
    _scan_prose(text[position:], scan)
    findings = _findings(scan.objects, scan.warnings)
    prose = _tidy("".join(scan.prose))
    if not prose:
        prose = "\n".join(f.text for f in findings)
    return ParsedReport(prose, findings, tuple(scan.warnings))
