"""The admin's actions (POST only; admin role; CSRF token with a session cookie).

A browser's form gets a redirect back to the page it came from; an API client (bearer token) gets
JSON, with 409 when the target was not in a state the action applies to.  Tasks are sent to the
broker only after the action's transaction committed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from radassist import actions
from radassist.auth.users import CurrentUser
from radassist.config import Settings
from radassist.db.tables import Study
from radassist.pipelines import pipeline_for
from radassist.store.instances import InstanceStore
from radassist.web.deps import AdminPostDep, ProbeDep, SettingsDep
from radassist.web.routes.auth import _safe_next
from radassist.web.schemas import ActionOut

logger = logging.getLogger(__name__)

router = APIRouter(tags=["actions"])

RESPONSES: dict[int | str, dict[str, object]] = {
    409: {"model": ActionOut, "description": "the target is not in a state this action applies to"}
}


async def _run(request: Request, user: CurrentUser, probe: ProbeDep,
               action: Callable[[Session], actions.ActionResult]) -> Response:
    sessions = cast(sessionmaker[Session], request.app.state.sessionmaker)
    with sessions.begin() as session:
        result = action(session)
    if result.removed_files:
        _remove_files(request, result.removed_files)
    request.app.state.count_cache.clear()  # the admin sees the effect of the action at once
    for task in result.dispatch:
        try:
            probe.send_task(task.task, task.args, task.queue)
        except Exception as exc:  # noqa: BLE001 -- the sweep re-sends due work; say so, do not fail the action
            logger.warning("could not send %s to the broker (%s); the sweep will pick it up", task.task,
                           type(exc).__name__)
    if user.via == "session":
        form = await request.form()
        target = form.get("next")
        return RedirectResponse(_safe_next(target if isinstance(target, str) else None), status_code=303)
    return JSONResponse(ActionOut(ok=result.ok, message=result.message).model_dump(),
                        status_code=200 if result.ok else 409)


def _remove_files(request: Request, relpaths: tuple[str, ...]) -> None:
    """Files of instances an action took out of the database (after its commit)."""
    settings = cast(Settings, request.app.state.settings)
    store = InstanceStore(settings.storage.instances_dir)
    for relpath in relpaths:
        try:
            store.remove(relpath)
        except (OSError, ValueError) as exc:
            logger.warning("could not remove an instance file an action released (%s)", type(exc).__name__)


def _model_for(session: Session, settings: SettingsDep, study_id: uuid.UUID) -> str:
    called = session.scalar(Study.__table__.select().with_only_columns(Study.called_ae_title)
                            .where(Study.id == study_id))
    return pipeline_for(settings, called).model_name


@router.post("/api/jobs/{job_id}/retry", response_model=ActionOut, responses=RESPONSES)
async def retry_job(job_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep) -> Response:
    """A failed job: drafted again, or (when it has a draft) its failed deliveries sent again."""
    return await _run(request, user, probe, lambda s: actions.retry_job(s, job_id, user.name))


@router.post("/api/jobs/{job_id}/cancel", response_model=ActionOut, responses=RESPONSES)
async def cancel_job(job_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep) -> Response:
    """Stop a job in progress and its undelivered outputs."""
    return await _run(request, user, probe, lambda s: actions.cancel_job(s, job_id, user.name))


@router.post("/api/deliveries/{delivery_id}/retry", response_model=ActionOut, responses=RESPONSES)
async def retry_delivery(delivery_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep) -> Response:
    """Send a failed delivery again now."""
    return await _run(request, user, probe, lambda s: actions.retry_delivery(s, delivery_id, user.name))


@router.post("/api/studies/{study_id}/force-complete", response_model=ActionOut, responses=RESPONSES)
async def force_complete(study_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep,
                         settings: SettingsDep) -> Response:
    """Declare a study still receiving complete now, and queue its job."""
    return await _run(request, user, probe, lambda s: actions.force_complete(
        s, study_id, user.name, _model_for(s, settings, study_id)))


@router.post("/api/studies/{study_id}/redraft", response_model=ActionOut, responses=RESPONSES)
async def redraft(study_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep,
                  settings: SettingsDep) -> Response:
    """A new drafting job for a study with no job in progress."""
    return await _run(request, user, probe, lambda s: actions.redraft(
        s, study_id, user.name, _model_for(s, settings, study_id)))


@router.post("/api/studies/{study_id}/resolve-identity", response_model=ActionOut, responses=RESPONSES)
async def resolve_identity(study_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep,
                           keep_instance_id: Annotated[uuid.UUID, Form()],
                           resolution: Annotated[Literal["drop_others", "same_patient"], Form()]) -> Response:
    """A study held because its instances name different patients: keep the patient of
    ``keep_instance_id`` and either remove the other instances (``drop_others``) or take them as the
    same patient (``same_patient``); the study is then drafted as any other."""
    return await _run(request, user, probe, lambda s: actions.resolve_identity(
        s, study_id, user.name, keep_instance_id, resolution))


@router.post("/api/intake/{ae_title}/pause", response_model=ActionOut, responses=RESPONSES)
async def pause_intake(ae_title: str, request: Request, user: AdminPostDep, probe: ProbeDep) -> Response:
    """Refuse new associations from this calling AE title until resumed."""
    return await _run(request, user, probe, lambda s: actions.pause_intake(s, ae_title, user.name))


@router.post("/api/intake/{ae_title}/resume", response_model=ActionOut, responses=RESPONSES)
async def resume_intake(ae_title: str, request: Request, user: AdminPostDep, probe: ProbeDep) -> Response:
    return await _run(request, user, probe, lambda s: actions.resume_intake(s, ae_title, user.name))
