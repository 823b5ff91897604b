"""MAIRA-2's grounding grammar: grounded phrases followed by boxes on a 100-bin grid.

MAIRA-2 (``Maira2Processor.convert_output_to_plaintext_or_grounded_sequence``) writes each finding
as ``<obj>phrase<box><x55><y45><x70><y56></box>...</obj>``; a phrase without ``<box>`` is an
ungrounded finding, and output without any of these tokens is plain text.  The four numbers are
bins (``x_min, y_min, x_max, y_max``) of a grid of ``num_box_coord_bins`` (100) cells over the
picture as MAIRA-2's processor cropped it (centre square); the processor reads bin ``b`` as the
cell centre ``(b + 0.5) / bins``, and so do we.  MAIRA-2 grounds findings on the current frontal
image, which is the first picture it is shown.

The report text is the phrases (and any plain text), one per line, without the tokens.
"""

from __future__ import annotations

import dataclasses
import re

from radassist.grounding.boxes import (
    BOX_ARITY,
    BOX_MALFORMED,
    BOX_NON_NUMERIC,
    BOX_OUTSIDE_PHRASE,
    BOX_UNTERMINATED,
    PHRASE_UNTERMINATED,
    Box,
    CoordinateSpace,
    GroundedFinding,
    GroundingWarning,
    ParsedReport,
    check_corners,
)

PHRASE_START, PHRASE_END = "<obj>", "</obj>"
BOX_START, BOX_END = "<box>", "</box>"
NUM_BOX_COORD_BINS = 100
_TOKEN = re.compile(r"<([xy])([^<>]*)>")
_MARKUP = re.compile(r"</?obj>|<box>.*?(?:</box>|\Z)|</box>|<[xy]\d+>", re.DOTALL)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _box(content: str, bins: int, finding: int, index: int) -> Box | GroundingWarning:
    tokens = _TOKEN.findall(content)
    if _TOKEN.sub("", content).strip():
        return GroundingWarning(BOX_MALFORMED, "text inside a box", finding, index)
    if len(tokens) != 4:
        return GroundingWarning(BOX_ARITY, f"{len(tokens)} coordinates", finding, index)
    if [axis for axis, _ in tokens] != ["x", "y", "x", "y"]:
        return GroundingWarning(BOX_MALFORMED, "coordinates not in x, y, x, y order", finding, index)
    if not all(value.isascii() and value.isdigit() for _, value in tokens):
        return GroundingWarning(BOX_NON_NUMERIC, "a coordinate that is not a bin number", finding, index)
    values = [float(value) for _, value in tokens]
    problem = check_corners(values, finding=finding, box=index, upper=bins - 1)
    if problem is not None:
        return problem
    x_min, y_min, x_max, y_max = ((v + 0.5) / bins for v in values)
    return Box(x_min, y_min, x_max, y_max, CoordinateSpace.MODEL_NORMALISED, 0)


def _phrase(
    inner: str, bins: int, finding: int, warnings: list[GroundingWarning]
) -> GroundedFinding:
    """One ``<obj>`` body: the words before and around the boxes, and each well-formed box."""
    boxes: list[Box] = []
    index = 0
    position = inner.find(BOX_START)
    while position >= 0:
        end = inner.find(BOX_END, position)
        following = inner.find(BOX_START, position + len(BOX_START))
        if end < 0 or (0 <= following < end):
            warnings.append(GroundingWarning(BOX_UNTERMINATED, "a box without </box>", finding, index))
            index += 1
            position = following
            continue
        result = _box(inner[position + len(BOX_START) : end], bins, finding, index)
        if isinstance(result, Box):
            boxes.append(result)
        else:
            warnings.append(result)
        index += 1
        position = inner.find(BOX_START, end)
    return GroundedFinding(_clean(_MARKUP.sub(" ", inner)), tuple(boxes))


def _plain(text: str, warnings: list[GroundingWarning]) -> str:
    """Text outside any phrase; boxes there belong to no finding and are dropped."""
    if BOX_START in text or BOX_END in text:
        warnings.append(GroundingWarning(BOX_OUTSIDE_PHRASE, "box markup outside <obj>...</obj>"))
    return _clean(_MARKUP.sub(" ", text))


def parse_maira(text: str, *, num_box_coord_bins: int = NUM_BOX_COORD_BINS) -> ParsedReport:
    """Read MAIRA-2 output (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError('Argument "text" must be a string.')
    if num_box_coord_bins < 1:
        raise ValueError('Argument "num_box_coord_bins" must be at least 1.')
    warnings: list[GroundingWarning] = []
    findings: list[GroundedFinding] = []
    lines: list[str] = []
    position = 0
    while True:
        start = text.find(PHRASE_START, position)
        plain = _plain(text[position : start if start >= 0 else len(text)], warnings)
        if plain:
            lines.append(plain)
        if start < 0:
            break
        body = start + len(PHRASE_START)
        first_warning = len(warnings)
        end = text.find(PHRASE_END, body)
        following = text.find(PHRASE_START, body)
        if end < 0 or (0 <= following < end):
            # Cut off or never closed: the words stay in the report, its boxes are not trusted.
            stop = following if following >= 0 else len(text)
            warnings.append(GroundingWarning(PHRASE_UNTERMINATED, "a phrase without </obj>", len(findings)))
            finding = GroundedFinding(_clean(_MARKUP.sub(" ", text[body:stop])))
            position = stop
        else:
            finding = _phrase(text[body:end], num_box_coord_bins, len(findings), warnings)
            position = end + len(PHRASE_END)
        if finding.text or finding.boxes:
            findings.append(finding)
            if finding.text:
                lines.append(finding.text)
        else:  # an empty phrase is no finding: its warnings name none
            warnings[first_warning:] = [dataclasses.replace(w, finding=None) for w in warnings[first_warning:]]
    return ParsedReport("\n".join(lines), tuple(findings), tuple(warnings))
