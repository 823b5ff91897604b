"""Endpoints for the operator's tooling: liveness, readiness (database reachable) and Prometheus."""

from __future__ import annotations

import logging
from typing import cast

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from radassist.web.deps import SessionDep, UserDep, identify

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers; says nothing about the database (that is /readyz)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(session: SessionDep) -> JSONResponse:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        # The exception text can hold the URL; log the class only.
        logger.warning("readiness: database unreachable (%s)", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "code": "database.unreachable"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """This process's counters, then the gauges read from the database at this scrape.

    Needs a login (an API token, for Prometheus) unless ``[web] metrics_public`` is on.
    """
    if not request.app.state.settings.web.metrics_public and identify(request) is None:
        raise HTTPException(status_code=401, detail="login required", headers={"WWW-Authenticate": "Bearer"})
    database = cast(CollectorRegistry, request.app.state.metrics_registry)
    body = generate_latest(REGISTRY) + generate_latest(database)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


@router.get("/api/openapi.json", include_in_schema=False)
def openapi_schema(request: Request, user: UserDep) -> JSONResponse:
    """The API's OpenAPI description (for logged-in users, like everything but the probes)."""
    return JSONResponse(request.app.openapi())


@router.get("/api/docs", include_in_schema=False)
def api_docs(user: UserDep) -> Response:
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="RadAssist API")
