"""The worklist: studies with their state, timings, deliveries and failure reason, as HTML and JSON;
a study's page with the images the model saw."""

from __future__ import annotations

import datetime as dt
import io
import logging
import uuid
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from radassist.read.rows import WORKLIST_STATES, StudyView, WorklistState
from radassist.read.study import instance_path, study_view
from radassist.read.system import intake_pauses
from radassist.read.worklist import WorklistFilter, count_studies, counts_by_state, list_studies
from radassist.safety import Check
from radassist.store.instances import InstanceStore
from radassist.web.cache import TtlCache
from radassist.web.deps import SessionDep, SettingsDep, UserDep
from radassist.web.render import render
from radassist.web.schemas import StudyPage

logger = logging.getLogger(__name__)

router = APIRouter()

StateQuery = Annotated[WorklistState | None, Query(description="Only studies in this worklist state.")]
LimitQuery = Annotated[int, Query(ge=1, le=500)]
MAX_OFFSET = 2**31 - 1
"""Offsets past this are refused (422): PostgreSQL's OFFSET is a bigint and must not overflow."""
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
# Text filters are refused (422) unless they could be what they name: no control character reaches the
# database (PostgreSQL refuses NUL in text).
_CODE_STRING = r"^[A-Za-z0-9 _]*$"
"""DICOM CS characters (PS3.5 6.2), lower case allowed."""
_DEFAULT_REPERTOIRE = r"^[^\x00-\x1f\x7f\\]*$"
"""Printable, no backslash: AE titles and accession numbers (PS3.5 6.2, AE and SH)."""
ModalityQuery = Annotated[str | None, Query(max_length=16, pattern=_CODE_STRING, description="Modality, e.g. CT.")]
AeQuery = Annotated[
    str | None, Query(max_length=16, pattern=_DEFAULT_REPERTOIRE, description="Calling AE title, exactly.")
]
FromQuery = Annotated[dt.date | None, Query(alias="from", description="Last received on or after this day (UTC).")]
ToQuery = Annotated[dt.date | None, Query(alias="to", description="Last received on or before this day (UTC).")]
AccessionQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=_DEFAULT_REPERTOIRE,
        description="Accession number, exact match only (only its hash is stored).",
    ),
]
WarningsQuery = Annotated[
    str | None,
    Query(pattern=f"^(any|{'|'.join(c.value for c in Check)})?$",
          description="``any``: the latest draft has a safety warning; or the name of one check."),
]
THUMBNAIL_PX = 192
TOTAL_CAP = 10_000
"""A state-filtered total is counted up to this many (then shown as 10,000+)."""


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail="study not found")


def _day(value: dt.date | None, plus_days: int = 0) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=plus_days)


def _where(state: WorklistState | None, modality: str | None, ae: str | None, date_from: dt.date | None,
           date_to: dt.date | None, accession: str | None, warnings: str | None = None) -> WorklistFilter:
    return WorklistFilter(
        state=state.value if state is not None else None,
        modality=modality or None,
        ae_title=ae or None,
        received_from=_day(date_from),
        received_to=_day(date_to, plus_days=1),
        accession=accession or None,
        warnings=warnings or None,
    )


@router.get("/api/studies", response_model=StudyPage, tags=["worklist"])
def api_list_studies(
    request: Request,
    session: SessionDep,
    user: UserDep,
    state: StateQuery = None,
    modality: ModalityQuery = None,
    ae: AeQuery = None,
    date_from: FromQuery = None,
    date_to: ToQuery = None,
    accession: AccessionQuery = None,
    warnings: WarningsQuery = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> StudyPage:
    """The worklist, newest first, filtered; ``accession`` matches exactly (the number is stored hashed)."""
    where = _where(state, modality, ae, date_from, date_to, accession, warnings)
    rows = list_studies(session, where=where, limit=limit, offset=offset)
    total = _total(request, session, where)
    capped = bool(where.state) and total > TOTAL_CAP
    return StudyPage(
        items=rows,
        total=TOTAL_CAP if capped else total,
        total_capped=capped,
        limit=limit,
        offset=offset,
    )


def _total(request: Request, session: SessionDep, where: WorklistFilter) -> int:
    """The pager's total, remembered a few seconds per filter (see radassist/web/cache.py)."""
    cache = cast(TtlCache, request.app.state.count_cache)
    cap = TOTAL_CAP if where.state else None
    return int(cache.get(("total", where), lambda: count_studies(session, where=where, cap=cap)))


@router.get("/api/studies/{study_id}", response_model=StudyView, tags=["worklist"])
def api_study_detail(study_id: uuid.UUID, session: SessionDep, user: UserDep) -> StudyView:
    view = study_view(session, study_id)
    if view is None:
        raise _not_found()
    return view


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def worklist_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    state: StateQuery = None,
    modality: ModalityQuery = None,
    ae: AeQuery = None,
    date_from: FromQuery = None,
    date_to: ToQuery = None,
    accession: AccessionQuery = None,
    warnings: WarningsQuery = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> HTMLResponse:
    where = _where(state, modality, ae, date_from, date_to, accession, warnings)
    rows = list_studies(session, where=where, limit=limit, offset=offset)
    cache = cast(TtlCache, request.app.state.count_cache)
    counts = cache.get("by_state", lambda: counts_by_state(session))
    total = _total(request, session, where)
    filters: dict[str, Any] = {
        "state": state.value if state is not None else "",
        "modality": modality or "",
        "ae": ae or "",
        "from": date_from.isoformat() if date_from else "",
        "to": date_to.isoformat() if date_to else "",
        "accession": accession or "",
        "warnings": warnings or "",
    }
    return render(
        request,
        "worklist.html",
        {
            "rows": rows,
            "counts": counts,
            "states": WORKLIST_STATES,
            "state": filters["state"] or None,
            "filters": filters,
            "query": urlencode({k: v for k, v in filters.items() if v and k != "accession"}),
            "total": min(total, TOTAL_CAP) if filters["state"] else total,
            "total_capped": bool(filters["state"]) and total > TOTAL_CAP,
            "limit": limit,
            "offset": offset,
            "paused": intake_pauses(session),
            "checks": [c.value for c in Check],
        },
        user,
    )


@router.get("/studies/{study_id}", response_class=HTMLResponse, include_in_schema=False)
def study_page(request: Request, study_id: uuid.UUID, session: SessionDep, user: UserDep) -> HTMLResponse:
    view = study_view(session, study_id)
    if view is None:
        raise _not_found()
    return render(request, "study.html", {"s": view}, user)


@router.get("/studies/{study_id}/instances/{sop_instance_uid}/thumbnail.png", include_in_schema=False)
def thumbnail(study_id: uuid.UUID, sop_instance_uid: str, session: SessionDep, settings: SettingsDep,
              user: UserDep) -> Response:
    """A small PNG of an instance's first frame, rendered from the stored file as the model's input was."""
    import pydicom

    from radassist.errors import RadAssistError
    from radassist.imaging.pixels import frame_to_rgb, to_image

    relpath = instance_path(session, study_id, sop_instance_uid[:64])
    if relpath is None:
        raise HTTPException(status_code=404, detail="instance not found")
    try:
        # The stored path is ours, but the same guard as every other reader: never outside the store.
        path = InstanceStore(settings.storage.instances_dir).path(relpath)
        ds = pydicom.dcmread(path)
        image = to_image(frame_to_rgb(ds, 0, path=path), THUMBNAIL_PX)
    except (RadAssistError, OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        logger.info("thumbnail not rendered (%s)", type(exc).__name__)
        raise HTTPException(status_code=422, detail="this instance has no displayable image") from None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
