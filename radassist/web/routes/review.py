"""The review queue (held drafts first, then recent drafts nobody rated), as HTML and JSON, and the
radiologists' verdicts as CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from radassist.db.base import utcnow
from radassist.read.review import ReviewFilter, ReviewRow, filter_choices, review_queue
from radassist.read.verdicts import verdicts_csv
from radassist.web.deps import ReviewerDep, SessionDep, UserDep
from radassist.web.render import render
from radassist.web.routes.worklist import ModalityQuery

router = APIRouter(tags=["review"])

_NAME = r"^[^\x00-\x1f\x7f]*$"
ProfileQuery = Annotated[str | None, Query(max_length=64, pattern=_NAME, description="Prompt profile, e.g. cxr.")]
ModelQuery = Annotated[str | None, Query(max_length=256, pattern=_NAME, description="Model id, exactly.")]
LimitQuery = Annotated[int, Query(ge=1, le=500)]


def _where(modality: str | None, profile: str | None, model: str | None) -> ReviewFilter:
    return ReviewFilter(modality=modality or None, profile=profile or None, model=model or None)


@router.get("/api/review", response_model=list[ReviewRow])
def api_review_queue(session: SessionDep, user: UserDep, modality: ModalityQuery = None,
                     profile: ProfileQuery = None, model: ModelQuery = None, limit: LimitQuery = 50) -> list[ReviewRow]:
    """Drafts held for review (longest waiting first), then recent drafts without a verdict."""
    return review_queue(session, _where(modality, profile, model), limit)


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page(request: Request, session: SessionDep, user: UserDep, modality: ModalityQuery = None,
                profile: ProfileQuery = None, model: ModelQuery = None) -> HTMLResponse:
    filters = {"modality": modality or "", "profile": profile or "", "model": model or ""}
    return render(request, "review.html", {"rows": review_queue(session, _where(modality, profile, model)),
                                           "filters": filters, "choices": filter_choices(session)}, user)


@router.get("/api/verdicts.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "one row per verdict"}})
def verdicts_export(session: SessionDep, user: ReviewerDep) -> Response:
    """Every verdict with the draft it judges (radiologists and admins)."""
    name = f"radassist-verdicts-{utcnow():%Y%m%d-%H%M%S}.csv"
    return Response(verdicts_csv(session), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
