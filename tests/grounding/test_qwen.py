"""Qwen2.5-VL's JSON box grammar: well-formed, malformed, several findings, several boxes per finding."""

from __future__ import annotations

import pytest

from radassist.grounding import Box, CoordinateSpace, parser_for
from radassist.grounding.boxes import (
    BOX_ARITY,
    BOX_EMPTY,
    BOX_INVERTED,
    BOX_MALFORMED,
    BOX_NON_NUMERIC,
    BOX_OUT_OF_RANGE,
    BOX_PICTURE,
    BOX_UNLABELLED,
    JSON_INVALID,
    JSON_UNTERMINATED,
)
from radassist.grounding.qwen import parse_qwen

PIXELS = CoordinateSpace.MODEL_PIXELS


def test_fenced_json_after_prose_gives_findings_boxes_and_clean_text() -> None:
    text = (
        "FINDINGS: Patchy opacity in the right lower lobe. No pneumothorax.\n\n"
        "```json\n"
        "[\n"
        '  {"bbox_2d": [120, 340, 260, 470], "label": "Patchy opacity in the right lower lobe"},\n'
        '  {"bbox_2d": [400, 80, 452.5, 131], "label": "Small nodule in the left upper lobe"}\n'
        "]\n"
        "```\n"
        "IMPRESSION: Right lower lobe pneumonia."
    )
    report = parse_qwen(text)
    assert report.text == (
        "FINDINGS: Patchy opacity in the right lower lobe. No pneumothorax.\n\n"
        "IMPRESSION: Right lower lobe pneumonia."
    )
    assert [f.text for f in report.findings] == [
        "Patchy opacity in the right lower lobe",
        "Small nodule in the left upper lobe",
    ]
    assert report.findings[0].boxes == (Box(120, 340, 260, 470, PIXELS, 0),)
    assert report.findings[1].boxes == (Box(400, 80, 452.5, 131, PIXELS, 0),)
    assert report.warnings == ()
    assert report.grounded == report.findings


def test_boxes_with_one_label_are_one_finding_and_image_names_the_picture() -> None:
    text = (
        '[{"bbox_2d": [10, 20, 30, 40], "label": "Bilateral effusions"},'
        ' {"bbox_2d": [50, 20, 70, 40], "label": " Bilateral  effusions "},'
        ' {"bbox_2d": [5, 6, 7, 8], "label": "Rib fracture", "image": 2}]'
    )
    report = parse_qwen(text)
    assert [f.text for f in report.findings] == ["Bilateral effusions", "Rib fracture"]
    assert report.findings[0].boxes == (Box(10, 20, 30, 40, PIXELS, 0), Box(50, 20, 70, 40, PIXELS, 0))
    assert report.findings[1].boxes == (Box(5, 6, 7, 8, PIXELS, 1),)
    # Only JSON: the report text is the findings, one per line.
    assert report.text == "Bilateral effusions\nRib fracture"


def test_unfenced_objects_in_prose_are_markup_and_other_brackets_stay_prose() -> None:
    text = 'Opacity [see image] {"bbox_2d": [1, 2, 3, 4], "label": "Opacity"} and a list [1, 2] stays.'
    report = parse_qwen(text)
    assert report.text == "Opacity [see image] and a list [1, 2] stays."
    assert report.findings[0].boxes == (Box(1, 2, 3, 4, PIXELS, 0),)


@pytest.mark.parametrize(
    ("bbox", "code"),
    [
        ("[1, 2, 3]", BOX_ARITY),
        ("[1, 2, 3, 4, 5]", BOX_ARITY),
        ('["1", 2, 3, 4]', BOX_NON_NUMERIC),
        ("[true, 2, 3, 4]", BOX_NON_NUMERIC),
        ("[NaN, 2, 3, 4]", BOX_NON_NUMERIC),
        ('"10,20,30,40"', BOX_NON_NUMERIC),
        ("[30, 20, 10, 40]", BOX_INVERTED),
        ("[10, 40, 30, 20]", BOX_INVERTED),
        ("[10, 20, 10, 40]", BOX_EMPTY),
        ("[-5, 20, 30, 40]", BOX_OUT_OF_RANGE),
    ],
)
def test_malformed_boxes_are_dropped_with_a_warning(bbox: str, code: str) -> None:
    text = (
        "Opacity.\n```json\n"
        f'[{{"bbox_2d": {bbox}, "label": "Opacity"}}, {{"bbox_2d": [1, 2, 3, 4], "label": "Nodule"}}]\n```'
    )
    report = parse_qwen(text)
    assert [(f.text, len(f.boxes)) for f in report.findings] == [("Opacity", 0), ("Nodule", 1)]
    assert [(w.code, w.finding, w.box) for w in report.warnings] == [(code, 0, 0)]
    assert "Opacity" not in report.warnings[0].detail
    assert report.text == "Opacity."


def test_unlabelled_box_and_bad_picture_number_are_dropped() -> None:
    text = (
        '[{"bbox_2d": [1, 2, 3, 4]}, {"bbox_2d": [1, 2, 3, 4], "label": "  "},'
        ' {"bbox_2d": [1, 2, 3, 4], "label": "A", "image": 0}, 7]'
    )
    report = parse_qwen(text)
    assert [w.code for w in report.warnings] == [BOX_MALFORMED, BOX_UNLABELLED, BOX_UNLABELLED, BOX_PICTURE]
    assert report.grounded == ()


def test_output_cut_off_inside_the_json_keeps_complete_objects_only() -> None:
    text = (
        "Two findings.\n```json\n[\n"
        '  {"bbox_2d": [10, 20, 30, 40], "label": "Opacity"},\n'
        '  {"bbox_2d": [50, 60, 7'
    )
    report = parse_qwen(text)
    assert report.text == "Two findings."
    assert [(f.text, f.boxes) for f in report.findings] == [("Opacity", (Box(10, 20, 30, 40, PIXELS, 0),))]
    assert [w.code for w in report.warnings] == [JSON_UNTERMINATED]


def test_unfenced_cut_off_json_and_invalid_json() -> None:
    cut = parse_qwen('Report. [{"bbox_2d": [1, 2, 3, 4], "label": "A"}, {"bbox_2d": [5,')
    assert cut.text == "Report."
    assert [f.text for f in cut.grounded] == ["A"]
    assert [w.code for w in cut.warnings] == [JSON_UNTERMINATED]
    broken = parse_qwen('```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "A"}, {"bbox_2d": [1 2 3 4], "label": "B"}]\n```')
    assert [f.text for f in broken.grounded] == ["A"]
    assert [w.code for w in broken.warnings] == [JSON_INVALID]


def test_plain_text_and_fenced_prose_are_left_alone() -> None:
    report = parse_qwen("No acute findings.\n```\nnot json\n```")
    assert report.findings == () and report.warnings == ()
    assert report.text == "No acute findings.\nnot json"
    with pytest.raises(TypeError, match='"text"'):
        parse_qwen(None)  # type: ignore[arg-type]


def test_registry_gives_this_parser() -> None:
    assert parser_for("qwen2_5_vl") is parse_qwen


def test_cut_off_json_with_the_label_first_is_still_markup() -> None:
    report = parse_qwen('Report.\n[{"label": "A", "bbox_2d": [1, 2, 3, 4]}, {"label": "B", "bbox_2d": [5, 6')
    assert report.text == "Report."
    assert [(f.text, len(f.boxes)) for f in report.findings] == [("A", 1)]
    assert [w.code for w in report.warnings] == [JSON_UNTERMINATED]
