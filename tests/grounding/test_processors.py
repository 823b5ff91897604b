"""The model processors' own sizing, checked against what the real transformers processors output."""

from __future__ import annotations

import numpy as np
import pytest
import transformers as hf
from PIL import Image

from radassist.grounding import Crop, PictureGeometry, Resize, Size, SourceBox, to_source
from radassist.grounding.boxes import Box
from radassist.grounding.processors import maira_2_steps, processor_steps, qwen2_vl_resize
from tests.grounding.marked import bright_box, near


@pytest.mark.parametrize("size", [(128, 96), (300, 200), (2048, 1536), (37, 900)])
def test_qwen_resize_is_the_size_the_processor_produces(size: tuple[int, int]) -> None:
    processor = hf.Qwen2VLImageProcessorPil()  # Qwen2.5-VL uses Qwen2-VL's image processor
    out = processor(images=[Image.new("RGB", size)], return_tensors="np")
    _, grid_h, grid_w = (int(v) for v in out["image_grid_thw"][0])
    expected = Size(grid_w * processor.patch_size, grid_h * processor.patch_size)
    assert qwen2_vl_resize(Size(*size)).after == expected
    assert processor_steps(processor, Size(*size)) == (Resize(Size(*size), expected),)


def test_qwen_processor_with_site_pixel_bounds() -> None:
    processor = hf.Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=56 * 56)
    (step,) = processor_steps(processor, Size(400, 300))
    out = processor(images=[Image.new("RGB", (400, 300))], return_tensors="np")
    _, grid_h, grid_w = (int(v) for v in out["image_grid_thw"][0])
    assert step.after == Size(grid_w * 14, grid_h * 14)
    assert step.after.width * step.after.height <= 56 * 56


def test_maira_steps_match_the_processor_and_its_crop() -> None:
    # MAIRA-2's image processor: shortest edge 518, centre crop 518 x 518.
    processor = hf.BitImageProcessorPil(
        size={"shortest_edge": 518}, crop_size={"height": 518, "width": 518}, do_normalize=False
    )
    source = np.zeros((200, 300, 3), dtype=np.uint8)
    source[120:150, 150:180] = 255  # a marker at columns 150..179, rows 120..149
    steps = processor_steps(processor, Size(300, 200))
    assert steps == maira_2_steps(Size(300, 200))
    assert steps == (Resize(Size(300, 200), Size(777, 518)), Crop(Size(777, 518), 129, 0, 518, 518))

    pixels = processor(images=[Image.fromarray(source)], return_tensors="np")["pixel_values"][0]
    seen = (np.moveaxis(pixels, 0, -1) * 255).round().astype(np.uint8)
    assert seen.shape == (518, 518, 3)
    x0, y0, x1, y1 = bright_box(seen)
    geometry = PictureGeometry("1.2.3", 1, 300, 200, 0, steps)
    mapped = to_source(Box(x0 / 518, y0 / 518, x1 / 518, y1 / 518, "model_normalised"), geometry)
    assert isinstance(mapped, SourceBox)
    corners = (mapped.x_min, mapped.y_min, mapped.x_max, mapped.y_max)
    assert near(corners, (150, 120, 180, 150), 1.0), corners


def test_fixed_size_processors_and_unsupported_ones() -> None:
    siglip = hf.SiglipImageProcessorPil()  # squashes to 224 x 224
    assert processor_steps(siglip, Size(300, 200)) == (Resize(Size(300, 200), Size(224, 224)),)
    assert processor_steps(siglip, Size(224, 224)) == ()
    with pytest.raises(ValueError, match="tiled"):
        processor_steps(hf.LlavaNextImageProcessorPil(), Size(300, 200))
