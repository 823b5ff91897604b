"""The grounding of a draft as stored with it (JSON in the draft's generation record), and read back.

What is stored is what the outputs and the study page need and what an audit asks: the grammar the
model's text was read in, each picture's geometry (source frame and every step to the picture), the
findings with their boxes on the source images, and every warning about a box that was dropped.
Reading it back checks every value, so a record edited by hand or written by another version
becomes a ``ValueError`` naming the field, never a wrong box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from radassist.coded import CodedLabel
from radassist.grounding.boxes import GroundingWarning
from radassist.grounding.geometry import (
    Crop,
    MappedFinding,
    Pad,
    PictureGeometry,
    Resize,
    Size,
    SourceBox,
    Step,
)

RECORD_VERSION = 1


def _size(size: Size) -> list[int]:
    return [size.width, size.height]


def _step(step: Step) -> dict[str, Any]:
    if isinstance(step, Resize):
        return {"kind": "resize", "before": _size(step.before), "after": _size(step.after)}
    if isinstance(step, Pad):
        return {"kind": "pad", "before": _size(step.before), "left": step.left, "top": step.top,
                "right": step.right, "bottom": step.bottom}
    return {"kind": "crop", "before": _size(step.before), "left": step.left, "top": step.top,
            "width": step.width, "height": step.height}


def _picture(geometry: PictureGeometry) -> dict[str, Any]:
    return {
        "picture": geometry.picture,
        "sop_instance_uid": geometry.sop_instance_uid,
        "frame_number": geometry.frame_number,
        "columns": geometry.columns,
        "rows": geometry.rows,
        "steps": [_step(step) for step in geometry.steps],
    }


def _box(box: SourceBox) -> dict[str, Any]:
    return {"sop_instance_uid": box.sop_instance_uid, "frame_number": box.frame_number, "x_min": box.x_min,
            "y_min": box.y_min, "x_max": box.x_max, "y_max": box.y_max, "clipped": box.clipped}


def _warning(warning: GroundingWarning) -> dict[str, Any]:
    return {"code": warning.code, "detail": warning.detail, "finding": warning.finding, "box": warning.box}


def grounding_record(
    grammar: str,
    findings: Sequence[MappedFinding],
    warnings: Sequence[GroundingWarning],
    pictures: Sequence[PictureGeometry],
) -> dict[str, Any]:
    """The JSON-able record of a draft's grounding (see the module docstring)."""
    return {
        "version": RECORD_VERSION,
        "grammar": str(grammar),
        "pictures": [_picture(g) for g in pictures],
        "findings": [
            {
                "text": finding.text,
                "code": None if finding.code is None else {
                    "value": finding.code.value, "scheme": finding.code.scheme, "meaning": finding.code.meaning},
                "boxes": [_box(box) for box in finding.boxes],
            }
            for finding in findings
        ],
        "warnings": [_warning(w) for w in warnings],
    }


def _field(item: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = item.get(name) if isinstance(item, Mapping) else None
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ValueError(f'Field "{name}" of {where} is missing or malformed.')
    return value


def _read_size(value: Any, where: str) -> Size:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"A size of {where} is malformed.")
    return Size(value[0], value[1])


def _read_step(item: Mapping[str, Any], where: str) -> Step:
    kind = _field(item, "kind", str, where)
    before = _read_size(item.get("before"), where)
    if kind == "resize":
        return Resize(before, _read_size(item.get("after"), where))
    if kind == "pad":
        return Pad(before, *(_field(item, k, int, where) for k in ("left", "top", "right", "bottom")))
    if kind == "crop":
        return Crop(before, *(_field(item, k, int, where) for k in ("left", "top", "width", "height")))
    raise ValueError(f'Field "kind" of {where} is not resize, pad or crop.')


def _check(record: Mapping[str, Any]) -> None:
    if not isinstance(record, Mapping) or record.get("version") != RECORD_VERSION:
        raise ValueError("The grounding record is not of a version this code reads.")


def recorded_pictures(record: Mapping[str, Any]) -> tuple[PictureGeometry, ...]:
    """The geometries of the pictures the model was shown, as recorded."""
    _check(record)
    pictures = []
    for index, item in enumerate(_field(record, "pictures", list, "the grounding record")):
        where = f"picture {index} of the grounding record"
        steps = tuple(_read_step(step, where) for step in _field(item, "steps", list, where))
        pictures.append(PictureGeometry(
            _field(item, "sop_instance_uid", str, where), _field(item, "frame_number", int, where),
            _field(item, "columns", int, where), _field(item, "rows", int, where),
            _field(item, "picture", int, where), steps,
        ))
    return tuple(pictures)


def _read_box(item: Mapping[str, Any], where: str) -> SourceBox:
    x_min, y_min, x_max, y_max = (float(_field(item, k, (int, float), where)) for k in ("x_min", "y_min", "x_max", "y_max"))
    if not (0 <= x_min < x_max and 0 <= y_min < y_max):
        raise ValueError(f"The corners of {where} do not make a box.")
    return SourceBox(_field(item, "sop_instance_uid", str, where), _field(item, "frame_number", int, where),
                     x_min, y_min, x_max, y_max, bool(item.get("clipped", False)))


def recorded_findings(record: Mapping[str, Any]) -> tuple[MappedFinding, ...]:
    """The findings with their boxes on the source images, as recorded."""
    _check(record)
    findings = []
    for number, item in enumerate(_field(record, "findings", list, "the grounding record")):
        where = f"finding {number} of the grounding record"
        code_item = item.get("code") if isinstance(item, Mapping) else None
        code = None
        if code_item is not None:
            code = CodedLabel(*(_field(code_item, k, str, where) for k in ("value", "scheme", "meaning")))
        boxes = tuple(_read_box(box, f"box {index} of {where}")
                      for index, box in enumerate(_field(item, "boxes", list, where)))
        findings.append(MappedFinding(_field(item, "text", str, where), boxes, code))
    return tuple(findings)


def recorded_warnings(record: Mapping[str, Any]) -> tuple[GroundingWarning, ...]:
    """The warnings about boxes that were dropped, as recorded."""
    _check(record)
    warnings = []
    for index, item in enumerate(_field(record, "warnings", list, "the grounding record")):
        where = f"warning {index} of the grounding record"
        finding, box = item.get("finding"), item.get("box")
        warnings.append(GroundingWarning(
            _field(item, "code", str, where), _field(item, "detail", str, where),
            finding if isinstance(finding, int) and not isinstance(finding, bool) else None,
            box if isinstance(box, int) and not isinstance(box, bool) else None,
        ))
    return tuple(warnings)
