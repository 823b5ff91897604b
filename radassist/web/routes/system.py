"""The system page (queues, workers, disk, recent counts) and the audit log, as HTML and JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from radassist.db.base import utcnow
from radassist.read.quality_compare import drift_by_model
from radassist.read.rows import AuditRow, PauseRow, SystemView
from radassist.read.system import audit_entries, intake_pauses, system_view
from radassist.web.deps import AdminDep, ProbeDep, SessionDep, SettingsDep, UserDep
from radassist.web.render import render
from radassist.web.routes.worklist import OffsetQuery

router = APIRouter()


@router.get("/api/system", response_model=SystemView, tags=["system"])
def api_system(session: SessionDep, probe: ProbeDep, user: UserDep, settings: SettingsDep) -> SystemView:
    """Queue depths, workers, free disk, and studies per state received in the last hour and day."""
    return system_view(session, probe.status(), utcnow(), settings.queue.worker_lost_after_seconds)


@router.get("/system", response_class=HTMLResponse, include_in_schema=False)
def system_page(request: Request, session: SessionDep, probe: ProbeDep, user: UserDep,
                settings: SettingsDep) -> HTMLResponse:
    return render(request, "system.html", {"sys": system_view(session, probe.status(), utcnow(),
                                                               settings.queue.worker_lost_after_seconds),
                                           "paused": intake_pauses(session),
                                           "drift": drift_by_model(session, settings.quality, utcnow())}, user)


@router.get("/api/intake/pauses", response_model=list[PauseRow], tags=["actions"])
def api_pauses(session: SessionDep, user: UserDep) -> list[PauseRow]:
    return intake_pauses(session)


@router.get("/api/audit", response_model=list[AuditRow], tags=["system"])
def api_audit(session: SessionDep, user: AdminDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
              offset: OffsetQuery = 0) -> list[AuditRow]:
    """Admin actions, newest first (admins only)."""
    return audit_entries(session, limit, offset)


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(request: Request, session: SessionDep, user: AdminDep,
               offset: OffsetQuery = 0) -> HTMLResponse:
    return render(request, "audit.html", {"entries": audit_entries(session, 200, offset), "offset": offset}, user)
