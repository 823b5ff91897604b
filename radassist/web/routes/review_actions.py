"""A reviewer's actions (radiologist or admin; CSRF token with a session cookie): release or discard
a held draft, give a verdict on a draft; and the admin's on a held output: send it anyway, cancel it.

Each takes its fields from a form (the study page) or a JSON body (the API), and answers as the
admin's actions do (:mod:`radassist.web.routes.actions`): a redirect back for a browser, JSON for an
API client, 409 when the target is not in a state the action applies to.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError, field_validator

from radassist import actions
from radassist.db.tables import Verdict, VerdictReason
from radassist.web.deps import AdminPostDep, ProbeDep, ReviewerPostDep
from radassist.web.routes.actions import RESPONSES
from radassist.web.routes.actions import _run as run_action  # noqa: PLC2701 -- one way to answer an action
from radassist.web.schemas import ActionOut

router = APIRouter(tags=["review"])
ModelT = TypeVar("ModelT", bound=BaseModel)


class ReasonBody(BaseModel):
    reason: Annotated[str, Field(max_length=2000)] = ""
    """Why the draft is released or discarded (kept in the audit log); required: without one the
    action is refused (409, audited)."""


class VerdictBody(BaseModel):
    verdict: Verdict | None = None
    """Required: without one the verdict is refused (409, audited)."""
    reasons: list[VerdictReason] = []
    corrected_text: Annotated[str | None, Field(max_length=actions.verdicts.CORRECTED_TEXT_MAX_CHARS)] = None
    seconds_spent: Annotated[float | None, Field(ge=0, le=actions.verdicts.SECONDS_MAX)] = None

    @field_validator("corrected_text", "seconds_spent", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


async def _fields(request: Request) -> dict[str, Any]:
    """The request's fields: its JSON object, else its form (repeated fields as lists)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(status_code=422, detail="the body is not JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(status_code=422, detail="the body must be a JSON object")
        return body
    form = await request.form()
    fields: dict[str, Any] = {key: form.get(key) for key in form if key not in ("csrf_token", "next")}
    if "reasons" in form:
        fields["reasons"] = form.getlist("reasons")
    return fields


async def _parsed(request: Request, model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(await _fields(request))
    except ValidationError as exc:
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        raise HTTPException(status_code=422, detail=errors) from None


@router.post("/api/jobs/{job_id}/release", response_model=ActionOut, responses=RESPONSES)
async def release_draft(job_id: uuid.UUID, request: Request, user: ReviewerPostDep, probe: ProbeDep) -> Response:
    """A draft held for review is built and sent (still an unverified AI draft); ``reason`` required."""
    body = await _parsed(request, ReasonBody)
    return await run_action(request, user, probe, lambda s: actions.release_draft(s, job_id, user.name, body.reason))


@router.post("/api/jobs/{job_id}/discard", response_model=ActionOut, responses=RESPONSES)
async def discard_draft(job_id: uuid.UUID, request: Request, user: ReviewerPostDep, probe: ProbeDep) -> Response:
    """A draft held for review is never sent; ``reason`` required."""
    body = await _parsed(request, ReasonBody)
    return await run_action(request, user, probe, lambda s: actions.discard_draft(s, job_id, user.name, body.reason))


@router.post("/api/jobs/{job_id}/verdict", response_model=ActionOut, responses=RESPONSES)
async def give_verdict(job_id: uuid.UUID, request: Request, user: ReviewerPostDep, probe: ProbeDep) -> Response:
    """Your verdict on the job's draft (replacing your earlier one): ``verdict``, ``reasons`` (at least
    one unless useful as is), optional ``corrected_text`` and ``seconds_spent``."""
    body = await _parsed(request, VerdictBody)
    if body.verdict is None:
        return await run_action(request, user, probe, lambda s: actions.refused(
            s, user.name, "verdict", str(job_id), "a verdict is required: useful_as_is, useful_with_edits or not_useful"))
    given = actions.VerdictInput(body.verdict, tuple(body.reasons), body.corrected_text, body.seconds_spent)
    return await run_action(request, user, probe, lambda s: actions.give_verdict(s, job_id, user.name, given))


@router.post("/api/deliveries/{delivery_id}/send-anyway", response_model=ActionOut, responses=RESPONSES)
async def send_held(delivery_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep) -> Response:
    """A held output that was built (an ORU held as ``hl7.no_order``) goes out as it is."""
    return await run_action(request, user, probe, lambda s: actions.send_held(s, delivery_id, user.name))


@router.post("/api/deliveries/{delivery_id}/cancel", response_model=ActionOut, responses=RESPONSES)
async def cancel_held(delivery_id: uuid.UUID, request: Request, user: AdminPostDep, probe: ProbeDep) -> Response:
    """A held output is never sent; the job finishes with its other outputs."""
    return await run_action(request, user, probe, lambda s: actions.cancel_held(s, delivery_id, user.name))
