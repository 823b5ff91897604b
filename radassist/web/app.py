"""The app factory: one engine per app, disposed on shutdown; nothing is created at import time.

The CLI runs ``uvicorn.run(create_app(settings), ...)``.  The engine is built here (it connects
lazily, on the first request), so an app also works under a ``TestClient`` that skips the lifespan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from radassist import __version__
from radassist.auth.ratelimit import LoginLimiter
from radassist.auth.secret import secret_key
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.read.metrics import WorkerCollector, database_registry
from radassist.read.quality_metrics import QualityCollector
from radassist.web.cache import TtlCache
from radassist.web.deps import LoginRequired
from radassist.web.routes import (
    actions,
    auth,
    conversation,
    grounding,
    ops,
    quality,
    review,
    review_actions,
    system,
    worklist,
)
from radassist.web.system import SystemProbe

TEMPLATES_DIR = Path(__file__).parent / "templates"
COUNT_CACHE_S = 5.0
"""How long the worklist's totals and per-state counts are reused (radassist/web/cache.py)."""


def format_utc(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_seconds(value: float | None) -> str:
    """Durations as a person reads them: ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 59.95:  # what would print as "60.0 s" reads better as "1 min 00 s"
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_bytes(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["utc"] = format_utc
    templates.env.filters["duration"] = format_seconds
    templates.env.filters["bytes"] = format_bytes
    return templates


async def _security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def create_app(settings: Settings) -> FastAPI:
    """Build the worklist app for ``settings``; each call has its own engine and metrics registry."""
    key = secret_key(settings)  # refuses a placeholder before anything else starts
    sessions = make_sessionmaker(settings)
    engine: Engine = sessions.kw["bind"]
    probe = SystemProbe(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            probe.close()
            engine.dispose()

    app = FastAPI(
        title="RadAssist worklist",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by routes/ops.py behind the login
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.sessionmaker = sessions
    app.state.templates = make_templates()
    app.state.secret_key = key
    app.state.probe = probe
    app.state.count_cache = TtlCache(COUNT_CACHE_S)
    app.state.quality_cache = TtlCache(quality.VIEW_CACHE_S)
    app.state.login_limiter = LoginLimiter(settings.web.login_attempts, settings.web.login_window_s)
    app.state.metrics_registry = database_registry(sessions, lambda: probe.status().queue_depths)
    app.state.metrics_registry.register(QualityCollector(sessions, settings.quality))
    app.state.metrics_registry.register(WorkerCollector(sessions, settings.queue.worker_lost_after_seconds))
    app.add_middleware(BaseHTTPMiddleware, dispatch=_security_headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default answer repeats each rejected value ("input"); a value may be a searched
        # accession number or other patient data, and 422 bodies end up in client and proxy logs.
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, _exc: LoginRequired) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    app.include_router(auth.router)
    app.include_router(worklist.router)
    app.include_router(actions.router)
    app.include_router(system.router)
    app.include_router(quality.router)
    app.include_router(ops.router)
    app.include_router(grounding.router)
    app.include_router(conversation.router)
    app.include_router(review.router)
    app.include_router(review_actions.router)
    return app
