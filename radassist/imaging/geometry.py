"""How a decoded frame becomes the picture the model is shown, each step recorded as it is applied.

The pixels and the record come from the same code: :func:`fit_picture` shrinks the frame to
``[model] image_size`` (longest side, :func:`~radassist.imaging.pixels.to_image`) and, when asked,
pads it to a centred square in black, and returns the :mod:`radassist.grounding.geometry` steps it
took with the sizes it saw.  A box the model draws on the picture is later mapped back to the
source frame by undoing exactly these steps (and the model processor's own, added by the backend).
"""

from __future__ import annotations

from PIL import Image
from pydicom.dataset import Dataset

from radassist.grounding.geometry import Pad, PictureGeometry, Resize, Size, Step, pad_to_square
from radassist.imaging.pixels import number_of_frames, to_image


def fit_picture(picture: Image.Image, image_size: int, *, square: bool = False) -> tuple[Image.Image, tuple[Step, ...]]:
    """``picture`` shrunk to ``image_size`` (and padded square with ``square``), and the steps taken."""
    steps: list[Step] = []
    shown = to_image(picture, image_size)
    if shown.size != picture.size:
        steps.append(Resize(Size(*picture.size), Size(*shown.size)))
    if square and shown.width != shown.height:
        pad: Pad = pad_to_square(Size(*shown.size))
        canvas = Image.new("RGB", (pad.after.width, pad.after.height))
        canvas.paste(shown, (pad.left, pad.top))
        shown = canvas
        steps.append(pad)
    return shown, tuple(steps)


def _dimension(ds: Dataset, keyword: str) -> int | None:
    try:
        value = int(ds.get(keyword))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def picture_geometry(
    ds: Dataset, frame: int, picture: int, decoded: Size, steps: tuple[Step, ...]
) -> PictureGeometry | None:
    """The geometry of picture ``picture`` made from 0-based ``frame`` of ``ds``, or None when it
    cannot be stated: no valid SOP Instance UID, or a decoded size other than Columns x Rows (a box
    could then not be placed on the image the PACS holds)."""
    columns, rows = _dimension(ds, "Columns"), _dimension(ds, "Rows")
    if (columns, rows) != (decoded.width, decoded.height) or not 0 <= frame < number_of_frames(ds):
        return None
    try:
        return PictureGeometry(str(ds.get("SOPInstanceUID", "")), frame + 1, decoded.width, decoded.height, picture,
                               steps)
    except ValueError:
        return None
