"""The system page (queues, workers, disk, recent counts) and the audit log, as HTML and JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from radassist.db import actions, queries
from radassist.db.base import utcnow
from radassist.web.deps import AdminDep, ProbeDep, SessionDep, UserDep
from radassist.web.render import render
from radassist.web.routes.worklist import OffsetQuery
from radassist.web.schemas import AuditOut, PauseOut, SystemOut, WorkerOut

router = APIRouter()


def _system(session: SessionDep, probe: ProbeDep) -> SystemOut:
    status = probe.status()
    counts = queries.recent_counts(session, utcnow())
    return SystemOut(
        queue_depths=status.queue_depths,
        queue_error=status.queue_error,
        workers=[WorkerOut.model_validate(w) for w in status.workers] if status.workers is not None else None,
        workers_error=status.workers_error,
        model_name=status.model_name,
        disk_total=status.disk_total,
        disk_free=status.disk_free,
        counts_last_hour=counts["hour"],
        counts_last_day=counts["day"],
    )


@router.get("/api/system", response_model=SystemOut, tags=["system"])
def api_system(session: SessionDep, probe: ProbeDep, user: UserDep) -> SystemOut:
    """Queue depths, workers, free disk, and studies per state received in the last hour and day."""
    return _system(session, probe)


@router.get("/system", response_class=HTMLResponse, include_in_schema=False)
def system_page(request: Request, session: SessionDep, probe: ProbeDep, user: UserDep) -> HTMLResponse:
    return render(request, "system.html", {"sys": _system(session, probe),
                                           "paused": actions.paused_ae_titles(session)}, user)


@router.get("/api/intake/pauses", response_model=list[PauseOut], tags=["actions"])
def api_pauses(session: SessionDep, user: UserDep) -> list[PauseOut]:
    return [PauseOut.model_validate(p) for p in actions.paused_ae_titles(session)]


@router.get("/api/audit", response_model=list[AuditOut], tags=["system"])
def api_audit(session: SessionDep, user: AdminDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
              offset: OffsetQuery = 0) -> list[AuditOut]:
    """Admin actions, newest first (admins only)."""
    return [AuditOut.model_validate(a) for a in actions.audit_log(session, limit, offset)]


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(request: Request, session: SessionDep, user: AdminDep,
               offset: OffsetQuery = 0) -> HTMLResponse:
    return render(request, "audit.html", {"entries": actions.audit_log(session, 200, offset), "offset": offset}, user)
