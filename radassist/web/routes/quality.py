"""The Quality page: how the drafts compare with the signed finals, for a time window and any slice,
as HTML (with plots drawn on the server), JSON and CSV; each model's drift figure as JSON.

Viewers and up may look.  The window is by when the draft was written: ``from``/``to`` (days, UTC),
else the last ``days``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Annotated, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.quality.plots import bars_svg, trend_svg
from radassist.quality.slices import SLICE_TITLES
from radassist.read.quality import quality_view
from radassist.read.quality_compare import drift_by_model
from radassist.read.quality_export import export_rows
from radassist.read.quality_pairs import count_pairs
from radassist.read.quality_rows import Drafts, ModelDrift, QualityFilter, QualityView
from radassist.web.cache import TtlCache
from radassist.web.deps import SessionDep, SettingsDep, UserDep
from radassist.web.render import render

router = APIRouter()

_TEXT = r"^[^\x00-\x1f\x7f]*$"
"""Printable text: no control character reaches the database."""
DEFAULT_DAYS = 30
TREND_SERIES = (
    ("finding_f1_micro", "finding F1 (micro)"),
    ("rouge_l", "ROUGE-L"),
    ("edit_rate_median", "median edit rate"),
    ("critical_miss_rate", "critical miss rate"),
    ("acceptance_rate", "acceptance rate"),
)
PLOTTED_FINDINGS = 20
VIEW_CACHE_S = 60.0
CACHE_FROM_PAIRS = 500
"""A view over this many pairs or more is remembered for ``VIEW_CACHE_S`` per window and slice (its
bootstrap intervals are the page's main cost); smaller ones are always computed afresh."""
SLICE_PARAMS = {"model_name": "model", "prompt_version": "prompt_version", "profile": "profile",
                "modality": "modality", "calling_ae_title": "ae", "patient_sex": "sex", "age_band": "age_band"}
"""The query parameter of each slice column."""


def _text(description: str, length: int = 256) -> object:
    return Query(max_length=length, pattern=_TEXT, description=description)


_DAY = r"^(\d{4}-\d{2}-\d{2})?$"
"""A day (YYYY-MM-DD) or nothing: the page's form sends its empty fields too."""
FromQuery = Annotated[str | None, Query(alias="from", pattern=_DAY, description="Drafts written on or after this day (UTC).")]
ToQuery = Annotated[str | None, Query(alias="to", pattern=_DAY, description="Drafts written on or before this day (UTC).")]
DaysQuery = Annotated[int, Query(ge=1, le=3660, description="Without from/to: the last this many days.")]
ModelQuery = Annotated[str | None, _text("Model name, exactly.")]
PromptQuery = Annotated[str | None, _text("Prompt version, exactly.", 32)]
ProfileQuery = Annotated[str | None, _text("Prompt profile, exactly.", 64)]
ModalityQuery = Annotated[str | None, _text("Modality, e.g. CR.", 16)]
AeQuery = Annotated[str | None, _text("Calling AE title, exactly.", 16)]
SexQuery = Annotated[str | None, Query(pattern=r"^[FMO]?$", description="Patient sex: F, M or O.")]
AgeQuery = Annotated[str | None, Query(max_length=8, pattern=r"^[0-9+-]*$", description="Age band, e.g. 60-79.")]
DraftsQuery = Annotated[Drafts, Query(description="live (the pipelines' drafts), shadow, or all.")]


def _day(value: str | None, plus_days: int = 0) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=plus_days)
    except (ValueError, OverflowError):
        raise HTTPException(status_code=422, detail="from and to must be days between 0001-01-01 and 9999-12-30") from None


def quality_filter(
    date_from: FromQuery = None, date_to: ToQuery = None, days: DaysQuery = DEFAULT_DAYS, model: ModelQuery = None,
    prompt_version: PromptQuery = None, profile: ProfileQuery = None, modality: ModalityQuery = None,
    ae: AeQuery = None, sex: SexQuery = None, age_band: AgeQuery = None, drafts: DraftsQuery = "live",
) -> QualityFilter:
    """The window and slice of a request (an empty field is no filter)."""
    # Without "to", the window ends at the next whole minute: the same question within a minute is the same.
    until = _day(date_to, plus_days=1) or utcnow().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    try:
        since = _day(date_from) or until - dt.timedelta(days=days)
    except OverflowError:
        since = dt.datetime.min.replace(tzinfo=dt.UTC)
    return QualityFilter(since=since, until=until, model_name=model or None, prompt_version=prompt_version or None,
                         profile=profile or None, modality=modality or None, calling_ae_title=ae or None,
                         patient_sex=sex or None, age_band=age_band or None, drafts=drafts)


WhereDep = Annotated[QualityFilter, Depends(quality_filter)]


@router.get("/api/quality", response_model=QualityView, tags=["quality"])
def api_quality(
    request: Request, session: SessionDep, settings: SettingsDep, user: UserDep, where: WhereDep
) -> QualityView:
    """Pairs, acceptance, headline figures with intervals, per-finding scores, critical misses, weekly
    trend, models and shadow comparisons for the window and slice."""
    return _view(request, session, settings, where)


def _view(request: Request, session: Session, settings: Settings, where: QualityFilter) -> QualityView:
    """The view of ``where``; a large one may come from the last minute (see ``CACHE_FROM_PAIRS``)."""
    if count_pairs(session, where) < CACHE_FROM_PAIRS:
        return quality_view(session, where, settings.quality)
    cache = cast(TtlCache, request.app.state.quality_cache)
    return cast(QualityView, cache.get(where, lambda: quality_view(session, where, settings.quality)))


@router.get("/api/quality/drift", response_model=list[ModelDrift], tags=["quality"])
def api_drift(session: SessionDep, settings: SettingsDep, user: UserDep) -> list[ModelDrift]:
    """Each model's drift figure over the last ``[quality] drift_window_days`` against its threshold."""
    return list(drift_by_model(session, settings.quality, utcnow()))


@router.get("/quality.csv", tags=["quality"])
def quality_csv(session: SessionDep, user: UserDep, where: WhereDep) -> StreamingResponse:
    """One line per measured pair of the window and slice (CSV)."""
    lines = list(export_rows(session, where))

    def body() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for line in lines:
            writer.writerow(line)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    name = f"radassist-quality-{where.since:%Y%m%d}-{where.until:%Y%m%d}.csv"
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _plots(view: QualityView) -> dict[str, str]:
    plots = {}
    if view.trend:
        series = {title: [getattr(p, name) for p in view.trend] for name, title in TREND_SERIES}
        plots["trend"] = trend_svg([p.week for p in view.trend], series, [p.pairs for p in view.trend], salt="trend")
    shown = [r for r in view.per_finding if r.support or r.false_positives][:PLOTTED_FINDINGS]
    if shown:
        plots["findings"] = bars_svg([r.finding for r in shown],
                                     {"precision": [r.precision for r in shown], "recall": [r.recall for r in shown]},
                                     salt="findings")
    return plots


@router.get("/quality", response_class=HTMLResponse, include_in_schema=False)
def quality_page(
    request: Request, session: SessionDep, settings: SettingsDep, user: UserDep, where: WhereDep
) -> HTMLResponse:
    view = _view(request, session, settings, where)
    return render(request, "quality.html", {
        "view": view, "plots": _plots(view), "query": request.url.query, "asked": dict(request.query_params),
        "settings": settings.quality, "slice_titles": SLICE_TITLES, "slice_params": SLICE_PARAMS,
    }, user)
