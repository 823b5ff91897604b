"""The worklist: studies with their state, timings, deliveries and failure reason, as HTML and JSON."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from radassist.db import queries
from radassist.db.queries import WorklistState
from radassist.web.deps import SessionDep, TemplatesDep
from radassist.web.schemas import StudyDetailOut, StudyOut, StudyPage

router = APIRouter()

StateQuery = Annotated[WorklistState | None, Query(description="Only studies in this worklist state.")]
LimitQuery = Annotated[int, Query(ge=1, le=500)]
OffsetQuery = Annotated[int, Query(ge=0)]


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail="study not found")


@router.get("/api/studies", response_model=StudyPage, tags=["worklist"])
def api_list_studies(
    session: SessionDep, state: StateQuery = None, limit: LimitQuery = 50, offset: OffsetQuery = 0
) -> StudyPage:
    rows = queries.list_studies(session, state=state, limit=limit, offset=offset)
    return StudyPage(
        items=[StudyOut.model_validate(r) for r in rows],
        total=queries.count_studies(session, state=state),
        limit=limit,
        offset=offset,
    )


@router.get("/api/studies/{study_id}", response_model=StudyDetailOut, tags=["worklist"])
def api_study_detail(study_id: uuid.UUID, session: SessionDep) -> StudyDetailOut:
    detail = queries.study_detail(session, study_id)
    if detail is None:
        raise _not_found()
    return StudyDetailOut.from_detail(detail)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def worklist_page(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    state: StateQuery = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> HTMLResponse:
    rows = queries.list_studies(session, state=state, limit=limit, offset=offset)
    counts = queries.counts_by_state(session)
    total = counts[state.value] if state is not None else sum(counts.values())
    return templates.TemplateResponse(
        request,
        "worklist.html",
        {
            "rows": rows,
            "counts": counts,
            "states": list(WorklistState),
            "state": state.value if state is not None else None,
            "total": total,
            "limit": limit,
            "offset": offset,
        },
    )


@router.get("/studies/{study_id}", response_class=HTMLResponse, include_in_schema=False)
def study_page(
    request: Request, study_id: uuid.UUID, session: SessionDep, templates: TemplatesDep
) -> HTMLResponse:
    detail = queries.study_detail(session, study_id)
    if detail is None:
        raise _not_found()
    return templates.TemplateResponse(request, "study.html", {"d": detail, "s": detail.row})
