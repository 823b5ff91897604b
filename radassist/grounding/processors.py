"""The geometry steps a model's own image processor applies, computed with that processor's functions.

Boxes are written in the coordinates of the picture the vision encoder saw, which the processor
sized: Qwen2.5-VL resizes each picture with ``smart_resize`` to multiples of 28 pixels (aspect
ratio kept only approximately), MAIRA-2 resizes the shortest edge to 518 and crops the centre
square, LLaVA-OneVision squeezes the whole picture into its 384 x 384 base view.  These sizes are
taken from the processor's own settings and transformers' own functions, never re-derived here, so
a change in the library moves our mapping with it.  transformers (and torch) are imported only
when a step is computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from radassist.grounding.geometry import Crop, Resize, Size, Step, pad_to_square

# MAIRA-2's image processor (BitImageProcessor, as its encoder RAD-DINO's): shortest edge, then crop.
MAIRA_2_SHORTEST_EDGE = 518
MAIRA_2_CROP = 518
# Qwen2-VL / Qwen2.5-VL image processor defaults (Qwen2VLImageProcessor.size and patching).
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280
QWEN_PATCH_SIZE = 14
QWEN_MERGE_SIZE = 2


def _smart_resize() -> Any:
    try:  # the PIL backend needs no torchvision
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
    except ImportError:  # pragma: no cover - older transformers kept it in the main module
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
    return smart_resize


def qwen2_vl_resize(
    size: Size,
    *,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
    patch_size: int = QWEN_PATCH_SIZE,
    merge_size: int = QWEN_MERGE_SIZE,
) -> Resize:
    """Qwen2-VL / Qwen2.5-VL's resize of a ``size`` picture (transformers' ``smart_resize``)."""
    height, width = _smart_resize()(
        size.height, size.width, factor=patch_size * merge_size, min_pixels=min_pixels, max_pixels=max_pixels
    )
    return Resize(size, Size(int(width), int(height)))


def _centre_crop(before: Size, crop: Size) -> Crop:
    """transformers' ``center_crop`` offset, ``int((side - crop) / 2)``.  A crop larger than the
    picture would pad it, which no supported model does: ValueError."""
    if crop.width > before.width or crop.height > before.height:
        raise ValueError('Argument "crop" must fit the resized picture.')
    left, top = int((before.width - crop.width) / 2.0), int((before.height - crop.height) / 2.0)
    return Crop(before, left, top, crop.width, crop.height)


def shortest_edge_centre_crop(size: Size, *, shortest_edge: int, crop: Size | None) -> tuple[Step, ...]:
    """Resize so the shortest edge is ``shortest_edge`` (transformers' rule), then crop the centre."""
    from transformers.image_transforms import get_resize_output_image_size
    from transformers.image_utils import ChannelDimension

    # The function reads only the array's shape; a broadcast scalar has that shape and no pixels.
    shape_only = np.broadcast_to(np.uint8(0), (size.height, size.width, 1))
    height, width = get_resize_output_image_size(
        shape_only, size=shortest_edge, default_to_square=False, input_data_format=ChannelDimension.LAST
    )
    resized = Size(int(width), int(height))
    steps: tuple[Step, ...] = () if resized == size else (Resize(size, resized),)
    if crop is not None and crop != resized:
        steps += (_centre_crop(resized, crop),)
    return steps


def maira_2_steps(size: Size) -> tuple[Step, ...]:
    """MAIRA-2's processor: shortest edge to 518, centre 518 x 518."""
    return shortest_edge_centre_crop(size, shortest_edge=MAIRA_2_SHORTEST_EDGE, crop=Size(MAIRA_2_CROP, MAIRA_2_CROP))


def llava_onevision_steps(size: Size, base: Size, *, pictures: int = 1) -> tuple[Step, ...]:
    """The whole-picture view LLaVA-OneVision's processor gives the model of a ``size`` picture.

    Shown alone, a picture becomes the base picture -- the whole picture resized to ``base``
    (aspect ratio not kept) -- followed by tiles of a higher-resolution copy: the tiles are finer
    views of the same picture, so the base picture is the frame of reference of a box.  Shown with
    others, a picture is padded to a centred square and resized to ``base``, and not tiled.
    """
    steps: tuple[Step, ...] = ()
    if pictures > 1 and size.width != size.height:
        steps = (pad_to_square(size),)
    before = steps[-1].after if steps else size
    if before != base:
        steps += (Resize(before, base),)
    return steps


def _llava_onevision(image_processor: Any, size: Size, pictures: int) -> tuple[Step, ...]:
    resize_size: Any = image_processor.size
    if getattr(resize_size, "height", None) and getattr(resize_size, "width", None):
        base = Size(int(resize_size.width), int(resize_size.height))
    else:
        base = Size(int(resize_size.shortest_edge), int(resize_size.shortest_edge))
    return llava_onevision_steps(size, base, pictures=pictures)


def processor_steps(image_processor: Any, size: Size, *, pictures: int = 1) -> tuple[Step, ...]:
    """The steps a loaded transformers image processor applies to a ``size`` picture, one of
    ``pictures`` shown together.

    Knows the Qwen2-VL family (``smart_resize`` with the processor's own pixel bounds, patch and
    merge sizes), LLaVA-OneVision (its whole-picture base view, :func:`llava_onevision_steps`), and
    processors that resize to a shortest edge or a fixed size and may crop the centre (CLIP, BiT,
    SigLIP).  Anything else (other tiling processors, such as LLaVA-NeXT's) raises ValueError: its
    boxes cannot be mapped by these steps.
    """
    name = type(image_processor).__name__
    resize_size: Any = getattr(image_processor, "size", None)
    do_resize = bool(getattr(image_processor, "do_resize", True))
    if name.startswith("LlavaOnevisionImageProcessor"):
        return _llava_onevision(image_processor, size, pictures)
    if name.startswith("Qwen2VLImageProcessor"):
        if not do_resize:
            return ()
        return (
            qwen2_vl_resize(
                size,
                min_pixels=int(resize_size.shortest_edge),
                max_pixels=int(resize_size.longest_edge),
                patch_size=int(image_processor.patch_size),
                merge_size=int(image_processor.merge_size),
            ),
        )
    if getattr(image_processor, "image_grid_pinpoints", None):
        raise ValueError(f"{name}: tiled (any-resolution) pictures are not supported")
    crop_size = getattr(image_processor, "crop_size", None)
    crop = None
    if getattr(image_processor, "do_center_crop", False) and crop_size is not None:
        crop = Size(int(crop_size.width), int(crop_size.height))
    if do_resize and getattr(resize_size, "shortest_edge", None) and not getattr(resize_size, "longest_edge", None):
        return shortest_edge_centre_crop(size, shortest_edge=int(resize_size.shortest_edge), crop=crop)
    if do_resize and getattr(resize_size, "height", None) and getattr(resize_size, "width", None):
        resized = Size(int(resize_size.width), int(resize_size.height))
        steps: tuple[Step, ...] = () if resized == size else (Resize(size, resized),)
        if crop is not None and crop != resized:
            steps += (_centre_crop(resized, crop),)
        return steps
    if not do_resize and crop is None:
        return ()
    raise ValueError(f"{name}: its resizing rule is not supported")
