"""Boxes mapped back to exact source pixels: a synthetic image with a marker at a known place is
prepared as the drafting pipeline does (decode, window, resize to ``image_size``, pad), resized by
the model's processor rule, the marker is found in the picture the model would see, written as
the model would write it, parsed, and mapped back."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from radassist.grounding import (
    Box,
    CoordinateSpace,
    Crop,
    GroundedFinding,
    Pad,
    PictureGeometry,
    Resize,
    Size,
    SourceBox,
    map_findings,
    pad_to_square,
    parser_for,
    to_source,
)
from radassist.grounding.boxes import BOX_OUTSIDE_IMAGE, BOX_PICTURE, GroundingWarning
from radassist.grounding.geometry import Step
from radassist.grounding.processors import maira_2_steps, qwen2_vl_resize
from radassist.imaging.pixels import frame_to_rgb, to_image
from tests.grounding.marked import bright_box, marked_ct, marked_multiframe, near

UID = "1.2.826.0.1.3680043.8.498.1"


def _apply(picture: Image.Image, step: Step) -> Image.Image:
    """What the imaging code and the model's processor do to the pixels, for each recorded step."""
    if isinstance(step, Resize):
        return picture.resize((step.after.width, step.after.height), Image.Resampling.BICUBIC)
    if isinstance(step, Pad):
        canvas = Image.new(picture.mode, (step.after.width, step.after.height))
        canvas.paste(picture, (step.left, step.top))
        return canvas
    return picture.crop((step.left, step.top, step.left + step.width, step.top + step.height))


def _prepare(ds: object, frame: int, image_size: int, *, pad: bool) -> tuple[Image.Image, list[Step]]:
    """Decode and window the frame, shrink it to ``image_size`` (to_image), pad it square if asked."""
    rgb = frame_to_rgb(ds, frame)  # type: ignore[arg-type]
    source = Size(rgb.shape[1], rgb.shape[0])
    picture = to_image(rgb, image_size)
    steps: list[Step] = [Resize(source, Size(*picture.size))]
    if pad:
        steps.append(pad_to_square(steps[-1].after))
        picture = _apply(picture, steps[-1])
    return picture, steps


def test_qwen_box_after_resize_and_padding_on_a_non_square_image_lands_on_the_marker() -> None:
    marker = (210, 50, 240, 70)  # columns 210..239, rows 50..69 of a 300 x 200 image
    ds = marked_ct(300, 200, marker)
    picture, steps = _prepare(ds, 0, 128, pad=True)
    assert picture.size == (128, 128) and steps[0].after == Size(128, 85)
    steps.append(qwen2_vl_resize(picture_size := Size(*picture.size)))
    assert steps[-1].before == picture_size and steps[-1].after == Size(140, 140)
    model_picture = _apply(picture, steps[-1])
    geometry = PictureGeometry(str(ds.SOPInstanceUID), 1, 300, 200, 0, tuple(steps))
    assert geometry.model_size == Size(140, 140)

    box = bright_box(model_picture)
    text = "Dense focus in the right upper zone.\n```json\n" + json.dumps(
        [{"bbox_2d": list(box), "label": "Dense focus"}]
    ) + "\n```"
    report = parser_for("qwen2_5_vl")(text)
    mapped = map_findings(report.findings, [geometry])
    assert mapped.warnings == ()
    (finding,) = mapped.findings
    (source_box,) = finding.boxes
    assert (source_box.sop_instance_uid, source_box.frame_number) == (ds.SOPInstanceUID, 1)
    # One model pixel is 300 / 140 source pixels: the marker is found to within about one of them.
    corners = (source_box.x_min, source_box.y_min, source_box.x_max, source_box.y_max)
    assert near(corners, marker, 2.5), corners
    assert not source_box.clipped


def test_maira_box_after_its_processor_crop_lands_on_the_marker() -> None:
    marker = (150, 120, 180, 150)
    ds = marked_ct(300, 200, marker)
    picture, steps = _prepare(ds, 0, 256, pad=False)
    processor_steps = maira_2_steps(Size(*picture.size))
    assert [type(s) for s in processor_steps] == [Resize, Crop]
    assert processor_steps[-1].after == Size(518, 518)
    for step in processor_steps:
        picture = _apply(picture, step)
    geometry = PictureGeometry(str(ds.SOPInstanceUID), 1, 300, 200, 0, (*steps, *processor_steps))

    x0, y0, x1, y1 = bright_box(picture)
    # MAIRA-2 writes each edge as the bin whose centre is nearest: (bin + 0.5) / 100 of the crop.
    bins = [round(v / 518 * 100 - 0.5) for v in (x0, y0, x1, y1)]
    text = "<obj>Dense focus.<box>" + "".join(f"<{a}{b}>" for a, b in zip("xyxy", bins, strict=True)) + "</box></obj>"
    mapped = map_findings(parser_for("maira_2")(text).findings, [geometry])
    (source_box,) = mapped.findings[0].boxes
    corners = (source_box.x_min, source_box.y_min, source_box.x_max, source_box.y_max)
    # Half a bin of the 518 crop is 200 / 518 * 2.59 = 1 source pixel, plus edge blur.
    assert near(corners, marker, 2.5), corners


def test_multiframe_box_names_the_frame_and_the_picture() -> None:
    marker = (60, 10, 80, 30)
    ds = marked_multiframe(96, 64, frames=4, marked_frame=3, marker=marker)
    first, _ = _prepare(ds, 0, 48, pad=False)
    with pytest.raises(AssertionError, match="no bright pixel"):
        bright_box(first)  # frame 1 has no marker: the frame matters
    picture, steps = _prepare(ds, 2, 48, pad=False)  # 0-based frame 2 is frame number 3
    steps.append(qwen2_vl_resize(Size(*picture.size), min_pixels=28 * 28 * 4))
    model_picture = _apply(picture, steps[-1])
    shown = [
        PictureGeometry(str(ds.SOPInstanceUID), 1, 96, 64, 0, (Resize(Size(96, 64), Size(48, 32)),)),
        PictureGeometry(str(ds.SOPInstanceUID), 3, 96, 64, 1, tuple(steps)),
    ]
    text = json.dumps([{"bbox_2d": list(bright_box(model_picture)), "label": "Marker", "image": 2}])
    mapped = map_findings(parser_for("qwen2_5_vl")(text).findings, shown)
    (source_box,) = mapped.findings[0].boxes
    assert (source_box.sop_instance_uid, source_box.frame_number) == (ds.SOPInstanceUID, 3)
    scale = 96 / steps[-1].after.width
    corners = (source_box.x_min, source_box.y_min, source_box.x_max, source_box.y_max)
    assert near(corners, marker, 1.2 * scale), corners


def test_each_step_is_undone_exactly() -> None:
    steps = (
        Crop(Size(1000, 600), 0, 50, 1000, 500),
        Resize(Size(1000, 500), Size(500, 250)),
        Pad(Size(500, 250), 0, 125, 0, 125),
        Resize(Size(500, 500), Size(1000, 1000)),
    )
    geometry = PictureGeometry(UID, 2, 1000, 600, 0, steps)
    mapped = to_source(Box(200, 250, 400, 500, CoordinateSpace.MODEL_PIXELS), geometry)
    assert mapped == SourceBox(UID, 2, 200.0, 50.0, 400.0, 300.0, False)
    normalised = to_source(Box(0.2, 0.25, 0.4, 0.5, CoordinateSpace.MODEL_NORMALISED), geometry)
    assert normalised == mapped
    assert mapped.polyline() == ((200, 50), (400, 50), (400, 300), (200, 300), (200, 50))
    # Without steps the model saw the source itself.
    assert to_source(Box(1, 2, 3, 4, "model_pixels"), PictureGeometry(UID, 1, 10, 10, 0)) == SourceBox(
        UID, 1, 1, 2, 3, 4
    )


def test_a_box_outside_the_image_is_dropped_and_a_small_overhang_clipped() -> None:
    # 200 x 100 padded to 200 x 200: rows 0..49 and 150..199 of the picture are padding.
    geometry = PictureGeometry(UID, 1, 200, 100, 0, (pad_to_square(Size(200, 100)),))
    in_padding = to_source(Box(10, 5, 60, 40, "model_pixels"), geometry, finding=3, index=1)
    assert in_padding == GroundingWarning(BOX_OUTSIDE_IMAGE, "beyond the source image's edge", 3, 1)
    thin_in_padding = to_source(Box(10, 49, 60, 49.5, "model_pixels"), geometry)
    assert isinstance(thin_in_padding, GroundingWarning) and thin_in_padding.code == BOX_OUTSIDE_IMAGE
    overhang = to_source(Box(150, 100, 201, 151, "model_pixels"), geometry)  # 1 px over two edges
    assert overhang == SourceBox(UID, 1, 150, 50, 200, 100, True)
    assert isinstance(to_source(Box(150, 100, 201, 151, "model_pixels"), geometry, tolerance=0.0), GroundingWarning)

    mapped = map_findings(
        [GroundedFinding("A", (Box(10, 5, 60, 40, "model_pixels"), Box(10, 60, 60, 90, "model_pixels"))),
         GroundedFinding("B", (Box(1, 1, 2, 2, "model_pixels", picture=4),)),
         GroundedFinding("C")],
        [geometry],
    )
    assert [(f.text, len(f.boxes)) for f in mapped.findings] == [("A", 1), ("B", 0), ("C", 0)]
    assert [(w.code, w.finding, w.box) for w in mapped.warnings] == [(BOX_OUTSIDE_IMAGE, 0, 0), (BOX_PICTURE, 1, 0)]


def test_geometry_rejects_what_cannot_be_undone() -> None:
    with pytest.raises(ValueError, match='"steps"'):
        PictureGeometry(UID, 1, 100, 50, 0, (Resize(Size(50, 100), Size(10, 20)),))
    with pytest.raises(ValueError, match='"steps"'):
        PictureGeometry(UID, 1, 100, 50, 0, (Resize(Size(100, 50), Size(10, 5)), Resize(Size(11, 5), Size(1, 1))))
    with pytest.raises(TypeError, match='"steps"'):
        PictureGeometry(UID, 1, 100, 50, 0, ("resize",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='"frame_number"'):
        PictureGeometry(UID, 0, 100, 50, 0)
    with pytest.raises(ValueError, match='"sop_instance_uid"'):
        PictureGeometry("not a uid", 1, 100, 50, 0)
    with pytest.raises(ValueError, match='"before"'):
        Crop(Size(10, 10), 5, 0, 6, 10)
    with pytest.raises(ValueError, match='"geometry"'):
        to_source(Box(1, 1, 2, 2, "model_pixels", picture=1), PictureGeometry(UID, 1, 10, 10, 0))
    with pytest.raises(ValueError, match='"geometries"'):
        map_findings([], [PictureGeometry(UID, 1, 10, 10, 0), PictureGeometry(UID, 2, 10, 10, 0)])
    with pytest.raises(ValueError, match="x_max"):
        Box(3, 1, 2, 2, "model_pixels")
    grown = PictureGeometry(UID, 1, 100, 50, 0).then(Resize(Size(100, 50), Size(50, 25)))
    assert grown.model_size == Size(50, 25) and grown.frame_number == 1
