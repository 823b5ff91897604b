"""Ask the study: the conversation panel's JSON API (radiologists and admins only).

``GET`` the turns, ``POST`` a question (answered on a drafting worker, before routine drafts),
follow an answer as it is written (server-sent events), and the kept pictures the model saw, on
which an answer's boxes are drawn.  A viewer gets 403 from every one of them.  A question's text
is never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, cast

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.conversation.ask import Asked, ask, clean_question
from radassist.db.base import utcnow
from radassist.read.conversation import ConversationView, conversation_view, kept_picture_job
from radassist.store.prepared import prepared_store
from radassist.web.deps import ProbeDep, ReviewerDep, ReviewerPostDep, SessionDep, SettingsDep

logger = logging.getLogger(__name__)

router = APIRouter(tags=["conversation"])

STREAM_POLL_S = 0.25
"""How often the event stream looks at the turn being answered."""
KEEPALIVE_S = 15.0


class QuestionIn(BaseModel):
    question: str = Field(min_length=1, max_length=20000, description="The radiologist's question about the study.")


class AskOut(BaseModel):
    """A question's reception: accepted (202, with its turn) or refused with the reason."""

    ok: bool
    code: str
    message: str
    turn_id: uuid.UUID | None = None


REFUSALS: dict[int | str, dict[str, object]] = {
    404: {"model": AskOut, "description": "no such study"},
    409: {"model": AskOut, "description": "no draft yet, too many turns, a question still being answered, or turned off"},
    422: {"model": AskOut, "description": "the question is empty, too long or holds control characters"},
    429: {"model": AskOut, "description": "the user's questions per hour are used up"},
}


def _sessions(request: Request) -> sessionmaker[Session]:
    return cast(sessionmaker[Session], request.app.state.sessionmaker)


def _out(asked: Asked) -> JSONResponse:
    body = AskOut(ok=asked.ok, code=asked.code, message=asked.message, turn_id=asked.turn_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=asked.status)


@router.get("/api/studies/{study_id}/conversation", response_model=ConversationView)
def get_conversation(study_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                     user: ReviewerDep) -> ConversationView:
    """Your conversation with the model about the study's current draft: every question and answer
    (answers are AI-generated and unverified), and whether you can ask another now."""
    view = conversation_view(session, settings.conversation, study_id, user.name)
    if view is None:
        raise HTTPException(status_code=404, detail="study not found")
    return view


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_BODY_BYTES = 256 * 1024
QUESTION_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": QuestionIn.model_json_schema()},
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["question"],
            "properties": {"question": {"type": "string"}, "csrf_token": {"type": "string"}}}},
    },
}


async def _question_of(request: Request) -> tuple[str | None, bool]:
    """The question in a JSON body (the API, the panel) or a form (a browser without scripts), and
    whether it came as a form; None when the body is not one of them."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        value = (await request.form()).get("question")
        return (value if isinstance(value, str) else ""), True
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        return None, False
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return None, False
    value = data.get("question", "") if isinstance(data, dict) else None
    return (value if isinstance(value, str) else None), False


@router.post("/api/studies/{study_id}/conversation", status_code=202, response_model=AskOut, responses=REFUSALS,
             openapi_extra={"requestBody": QUESTION_BODY})
async def post_question(study_id: uuid.UUID, request: Request, settings: SettingsDep, user: ReviewerPostDep,
                        probe: ProbeDep) -> Response:
    """Ask the model a question about the study (``{"question": "..."}``); the answer is written into
    the conversation as it comes (follow it with ``GET .../conversation/stream``, or read ``GET
    .../conversation``).  A browser form gets a redirect back to the study page instead."""
    text, as_form = await _question_of(request)
    try:
        if text is None:
            raise ValueError('the body must be {"question": "..."}')
        question = clean_question(text, settings.conversation.max_question_chars)
    except ValueError as exc:
        asked = Asked(422, "conversation.bad_question", str(exc))
    else:
        asked = await run_in_threadpool(_ask, _sessions(request), settings, study_id, user.name, question)
    for task in asked.dispatch:
        try:
            probe.send_task(task.task, task.args, task.queue)
        except Exception as exc:  # noqa: BLE001 -- the next drafting run answers it; say so in the log
            logger.warning("could not send the question to the broker (%s); the next drafting run takes it",
                           type(exc).__name__)
    if as_form and user.via == "session":
        return RedirectResponse(f"/studies/{study_id}#conversation", status_code=303)
    return _out(asked)


def _ask(sessions: sessionmaker[Session], settings: Settings, study_id: uuid.UUID, user: str, question: str) -> Asked:
    try:
        with sessions.begin() as session:
            return ask(session, settings.conversation, study_id, user, question, utcnow())
    except IntegrityError:  # the same user's second question in the same instant
        return Asked(409, "conversation.busy", "the previous question is still being answered")


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(jsonable_encoder(data), separators=(',', ':'))}\n\n"


async def _events(request: Request, read: Callable[[], ConversationView | None], first: ConversationView,
                  limit_s: float) -> AsyncIterator[str]:
    """Each turn whenever it changed, until no question is open (then ``idle``) or the limit."""
    sent: dict[uuid.UUID, tuple[object, ...]] = {}
    view, deadline, quiet_since = first, time.monotonic() + limit_s, time.monotonic()
    while True:
        for turn in view.turns:
            key = (turn.state, len(turn.answer), turn.error_code, len(turn.boxes))
            if sent.get(turn.id) != key:
                sent[turn.id] = key
                quiet_since = time.monotonic()
                yield _event("turn", turn)
        if not view.open_turn or time.monotonic() > deadline or await request.is_disconnected():
            yield _event("idle", {"can_ask": view.can_ask, "cannot_ask_because": view.cannot_ask_because})
            return
        if time.monotonic() - quiet_since > KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": still writing\n\n"
        await asyncio.sleep(STREAM_POLL_S)
        fresh = await run_in_threadpool(read)
        view = fresh if fresh is not None else view


@router.get("/api/studies/{study_id}/conversation/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "``event: turn`` with a turn each time it changes (its answer "
                                            "so far while it is written), then ``event: idle`` when no "
                                            "question is open"}})
async def stream_conversation(study_id: uuid.UUID, request: Request, settings: SettingsDep,
                              user: ReviewerDep) -> StreamingResponse:
    """Follow the answers being written, as server-sent events (``text/event-stream``)."""
    sessions = _sessions(request)

    def read() -> ConversationView | None:
        with sessions() as session:
            return conversation_view(session, settings.conversation, study_id, user.name)

    first = await run_in_threadpool(read)
    if first is None:
        raise HTTPException(status_code=404, detail="study not found")
    limits = settings.conversation
    limit_s = limits.wait_limit_s + limits.answer_time_limit_s + 60
    return StreamingResponse(_events(request, read, first, limit_s), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/studies/{study_id}/conversation/pictures/{job_id}/{index}.png", include_in_schema=False)
def kept_picture(study_id: uuid.UUID, job_id: uuid.UUID, index: Annotated[int, Path(ge=0, le=999)],
                 session: SessionDep, settings: SettingsDep, user: ReviewerDep) -> Response:
    """A picture as the model saw it (kept with the draft), for drawing an answer's boxes on."""
    data = prepared_store(settings).picture(job_id, index) if kept_picture_job(session, study_id, job_id) else None
    if data is None:
        raise HTTPException(status_code=404, detail="picture not kept")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
