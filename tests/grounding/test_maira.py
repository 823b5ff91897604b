"""MAIRA-2's grounded-phrase grammar: <obj>phrase<box><x..><y..><x..><y..></box></obj>, 100 bins."""

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
    BOX_OUTSIDE_PHRASE,
    BOX_UNTERMINATED,
    PHRASE_UNTERMINATED,
)
from radassist.grounding.maira import parse_maira

NORM = CoordinateSpace.MODEL_NORMALISED


def _box(x0: int, y0: int, x1: int, y1: int) -> Box:
    return Box((x0 + 0.5) / 100, (y0 + 0.5) / 100, (x1 + 0.5) / 100, (y1 + 0.5) / 100, NORM, 0)


def test_grounded_and_ungrounded_phrases_as_the_processor_reads_them() -> None:
    # The example of Maira2Processor.convert_output_to_plaintext_or_grounded_sequence, and more.
    text = (
        "<obj>Small left pleural effusion. <box><x55><y45><x70><y56></box></obj>"
        "<obj>No pneumothorax.</obj>"
        "<obj>Bibasilar atelectasis.<box><x10><y60><x30><y80></box><box><x60><y62><x85><y81></box></obj>"
    )
    report = parse_maira(text)
    assert report.text == "Small left pleural effusion.\nNo pneumothorax.\nBibasilar atelectasis."
    assert [(f.text, f.boxes) for f in report.findings] == [
        ("Small left pleural effusion.", (_box(55, 45, 70, 56),)),
        ("No pneumothorax.", ()),
        ("Bibasilar atelectasis.", (_box(10, 60, 30, 80), _box(60, 62, 85, 81))),
    ]
    assert report.findings[0].boxes[0].x_min == pytest.approx(0.555)  # the bin's centre
    assert report.warnings == ()
    assert [f.text for f in report.grounded] == ["Small left pleural effusion.", "Bibasilar atelectasis."]


def test_plain_text_output() -> None:
    report = parse_maira("  The lungs are clear.  ")
    assert report.text == "The lungs are clear."
    assert report.findings == () and report.warnings == ()


@pytest.mark.parametrize(
    ("box", "code"),
    [
        ("<x10><y20><x30>", BOX_ARITY),
        ("<x10><y20><x30><y40><x50>", BOX_ARITY),
        ("<x10><y20><y30><x40>", BOX_MALFORMED),
        ("<x10><y20><xab><y40>", BOX_NON_NUMERIC),
        ("<x10><y-2><x30><y40>", BOX_NON_NUMERIC),
        ("<x10><y20><x30><y100>", BOX_OUT_OF_RANGE),
        ("<x30><y20><x10><y40>", BOX_INVERTED),
        ("<x10><y20><x10><y40>", BOX_EMPTY),
        ("<x10> left <y20><x30><y40>", BOX_MALFORMED),
    ],
)
def test_malformed_boxes_are_dropped_with_a_warning(box: str, code: str) -> None:
    report = parse_maira(f"<obj>Opacity <box>{box}</box><box><x1><y2><x3><y4></box></obj><obj>Nodule</obj>")
    assert [(f.text, f.boxes) for f in report.findings] == [("Opacity", (_box(1, 2, 3, 4),)), ("Nodule", ())]
    assert [(w.code, w.finding, w.box) for w in report.warnings] == [(code, 0, 0)]
    assert "Opacity" not in report.warnings[0].detail


def test_unterminated_box_and_phrase_keep_the_words_and_drop_the_boxes() -> None:
    report = parse_maira(
        "<obj>Opacity <box><x1><y2><x3><y4><box><x5><y6><x7><y8></box></obj>"
        "<obj>Effusion on the left <box><x10><y20><x30><y4"
    )
    assert report.text == "Opacity\nEffusion on the left"
    assert [(f.text, f.boxes) for f in report.findings] == [("Opacity", (_box(5, 6, 7, 8),)), ("Effusion on the left", ())]
    assert [(w.code, w.finding, w.box) for w in report.warnings] == [
        (BOX_UNTERMINATED, 0, 0),
        (PHRASE_UNTERMINATED, 1, None),
    ]


def test_boxes_outside_a_phrase_belong_to_no_finding() -> None:
    report = parse_maira("Heart normal. <box><x1><y2><x3><y4></box><obj>Opacity</obj>")
    assert report.text == "Heart normal.\nOpacity"
    assert report.grounded == ()
    assert [w.code for w in report.warnings] == [BOX_OUTSIDE_PHRASE]


def test_an_empty_phrase_is_no_finding() -> None:
    report = parse_maira("<obj><box><x1><y2></box></obj><obj>Opacity <box><x1><y2><x3><y4></box></obj>")
    assert [f.text for f in report.findings] == ["Opacity"]
    assert [(w.code, w.finding) for w in report.warnings] == [(BOX_ARITY, None)]


def test_other_grid_sizes_and_bad_arguments() -> None:
    report = parse_maira("<obj>A<box><x0><y0><x9><y9></box></obj>", num_box_coord_bins=10)
    assert report.findings[0].boxes == (Box(0.05, 0.05, 0.95, 0.95, NORM, 0),)
    with pytest.raises(ValueError, match="num_box_coord_bins"):
        parse_maira("x", num_box_coord_bins=0)
    with pytest.raises(TypeError, match='"text"'):
        parse_maira(b"<obj>")  # type: ignore[arg-type]
    assert parser_for("maira_2") is parse_maira
