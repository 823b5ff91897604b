"""The app factory: one engine per app, disposed on shutdown; nothing is created at import time.

The CLI runs ``uvicorn.run(create_app(settings), ...)``.  The engine is built here (it connects
lazily, on the first request), so an app also works under a ``TestClient`` that skips the lifespan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from radassist import __version__
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.metrics import database_registry
from radassist.web.routes import ops, worklist

TEMPLATES_DIR = Path(__file__).parent / "templates"


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


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["utc"] = format_utc
    templates.env.filters["duration"] = format_seconds
    return templates


def create_app(settings: Settings) -> FastAPI:
    """Build the worklist app for ``settings``; each call has its own engine and metrics registry."""
    sessions = make_sessionmaker(settings)
    engine: Engine = sessions.kw["bind"]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="RadAssist worklist",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.sessionmaker = sessions
    app.state.templates = make_templates()
    app.state.metrics_registry = database_registry(sessions)
    app.include_router(worklist.router)
    app.include_router(ops.router)
    return app
