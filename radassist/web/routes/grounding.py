"""The frames a grounded draft's boxes are drawn on: a thumbnail of any frame of an instance.

The study page draws each box as SVG over the thumbnail of the frame it lies on (a box on frame 3
of a multi-frame object belongs over frame 3, not over the first frame).  The thumbnail is rendered
from the stored file as the model's input was: decoded, windowed, shrunk to a longest side of
``THUMBNAIL_PX``, aspect ratio kept.
"""

from __future__ import annotations

import io
import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response

from radassist.read.study import instance_path
from radassist.store.instances import InstanceStore
from radassist.web.deps import SessionDep, SettingsDep, UserDep
from radassist.web.routes.worklist import THUMBNAIL_PX

logger = logging.getLogger(__name__)

router = APIRouter()

FrameNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="1-based, as DICOM's Referenced Frame Number.")]


@router.get("/studies/{study_id}/instances/{sop_instance_uid}/frames/{frame}/thumbnail.png", include_in_schema=False)
def frame_thumbnail(study_id: uuid.UUID, sop_instance_uid: str, frame: FrameNumber, session: SessionDep,
                    settings: SettingsDep, user: UserDep) -> Response:
    """A small PNG of one frame (1-based) of an instance of the study."""
    import pydicom

    from radassist.errors import RadAssistError
    from radassist.imaging.pixels import frame_to_rgb, number_of_frames, to_image

    relpath = instance_path(session, study_id, sop_instance_uid[:64])
    if relpath is None:
        raise HTTPException(status_code=404, detail="instance not found")
    try:
        path = InstanceStore(settings.storage.instances_dir).path(relpath)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if frame > number_of_frames(ds):
            raise HTTPException(status_code=404, detail="the instance has no such frame")
        image = to_image(frame_to_rgb(ds, frame - 1, path=path), THUMBNAIL_PX)
    except (RadAssistError, OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        logger.info("frame thumbnail not rendered (%s)", type(exc).__name__)
        raise HTTPException(status_code=422, detail="this frame has no displayable image") from None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
