"""LLaVA-OneVision (RadVLM's architecture): the geometry of its whole-picture view, checked against
the pixels its own image processor produces.

Shown alone, a picture is tiled: the processor's first patch is the whole picture squeezed into the
base view (384 x 384), the others are tiles of a larger copy.  Shown with others, each picture is
padded to a centred square and resized to the base view.  A marker is found in the processor's
output and mapped back through ``processor_steps``: it must land on the marker's source pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import transformers
from PIL import Image

from radassist.grounding import Box, CoordinateSpace, PictureGeometry, Resize, Size, SourceBox, to_source
from radassist.grounding.geometry import Pad
from radassist.grounding.processors import llava_onevision_steps, processor_steps
from tests.grounding.marked import near

hf: Any = transformers
UID = "1.2.826.0.1.3680043.8.498.7"


def _picture(size: tuple[int, int], marker: tuple[int, int, int, int]) -> Image.Image:
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    c0, r0, c1, r1 = marker
    array[r0:r1, c0:c1] = 255
    return Image.fromarray(array)


def _bright(patch: Any) -> tuple[int, int, int, int]:
    """The pixel-edge box of the bright pixels of a (3, H, W) patch with values 0..1."""
    grey = np.asarray(patch)[0]
    rows = np.flatnonzero((grey > 0.75).any(axis=1))
    columns = np.flatnonzero((grey > 0.75).any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def _processor() -> Any:
    return hf.LlavaOnevisionImageProcessorPil(do_normalize=False)


def _mapped(box: tuple[int, int, int, int], steps: tuple[Any, ...], size: Size) -> tuple[float, ...]:
    geometry = PictureGeometry(UID, 1, size.width, size.height, 0, steps)
    mapped = to_source(Box(*box, CoordinateSpace.MODEL_PIXELS), geometry)
    assert isinstance(mapped, SourceBox)
    return mapped.x_min, mapped.y_min, mapped.x_max, mapped.y_max


def test_a_lone_picture_is_read_in_its_base_view() -> None:
    marker = (200, 50, 260, 90)  # on a 300 x 200 picture
    processor = _processor()
    steps = processor_steps(processor, Size(300, 200))
    assert steps == (Resize(Size(300, 200), Size(384, 384)),)
    pixels = processor.preprocess([_picture((300, 200), marker)], return_tensors="np")["pixel_values"]
    assert pixels.shape[1] > 1  # the base view and its tiles
    base = pixels[0][0]
    # One base pixel is 300 / 384 source pixels across and 200 / 384 down: within one, plus edge blur.
    assert near(_mapped(_bright(base), steps, Size(300, 200)), marker, 1.5)


def test_pictures_shown_together_are_padded_square_then_resized() -> None:
    marker = (20, 150, 60, 190)  # on a 100 x 250 picture (taller than wide)
    processor = _processor()
    steps = processor_steps(processor, Size(100, 250), pictures=2)
    assert steps == (Pad(Size(100, 250), 75, 0, 75, 0), Resize(Size(250, 250), Size(384, 384)))
    pictures = [[_picture((100, 250), marker), _picture((64, 64), (0, 0, 1, 1))]]
    pixels = processor.preprocess(pictures, return_tensors="np")["pixel_values"]
    first = pixels[0][0]
    assert near(_mapped(_bright(first), steps, Size(100, 250)), marker, 1.5)


@pytest.mark.parametrize(("size", "pictures", "expected"), [
    (Size(384, 384), 1, ()),
    (Size(384, 384), 3, ()),
    (Size(200, 100), 2, (Pad(Size(200, 100), 0, 50, 0, 50), Resize(Size(200, 200), Size(384, 384)))),
])
def test_steps_only_where_the_processor_changes_the_picture(size: Size, pictures: int, expected: tuple[Any, ...]) -> None:
    assert llava_onevision_steps(size, Size(384, 384), pictures=pictures) == expected
