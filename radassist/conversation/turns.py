"""A turn's state changes, each a compare-and-set: ``pending -> answering -> answered | failed``.

A worker takes a question only if it is still ``pending`` (so a duplicated or late message answers
nothing twice), writes the answer's text as it comes only while the turn is ``answering``, and
ends it once.  A question nobody took within ``[conversation] wait_limit_s``, or an answer whose
worker went silent past the answer time limit, is failed with the reason (:func:`expire_stale`),
so the radiologist is never left watching a question that will not be answered.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from radassist.config.conversation import ConversationSettings
from radassist.db.tables import ConversationTurn
from radassist.errors import PermanentFailure, RadAssistError
from radassist.states import TurnState

OPEN_STATES = (TurnState.PENDING, TurnState.ANSWERING)
WORKER_SILENCE_SLACK_S = 60.0
"""How long past the answer time limit an ``answering`` turn may stay silent before it is given up."""


@dataclass(frozen=True)
class AnswerRecord:
    """What the model was given for one answer: recorded before the first word is written."""

    model_name: str
    model_revision: str | None
    prompt: str
    prompt_version: str
    turns_left_out: int


@dataclass(frozen=True)
class AnswerEnd:
    """How an answer ended: its final text, the boxes it drew, and the figures kept with it."""

    text: str
    boxes: list[dict[str, Any]] = field(default_factory=list)
    generation: dict[str, Any] = field(default_factory=dict)


def _update(session: Session, turn_id: uuid.UUID, states: tuple[TurnState, ...], **values: Any) -> bool:
    result = session.execute(
        update(ConversationTurn)
        .where(ConversationTurn.id == turn_id, ConversationTurn.state.in_(states))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def claim(session: Session, turn_id: uuid.UUID, now: dt.datetime) -> bool:
    """``pending -> answering``; False when another worker took it or it was given up."""
    return _update(session, turn_id, (TurnState.PENDING,), state=TurnState.ANSWERING, started_at=now)


def begin(session: Session, turn_id: uuid.UUID, record: AnswerRecord) -> bool:
    """Record the model and exactly what it is given, before it writes."""
    return _update(session, turn_id, (TurnState.ANSWERING,), model_name=record.model_name,
                   model_revision=record.model_revision, prompt=record.prompt,
                   prompt_version=record.prompt_version, turns_left_out=record.turns_left_out)


def save_partial(session: Session, turn_id: uuid.UUID, text: str, now: dt.datetime, *, first: bool) -> bool:
    """The answer so far, for the page to show while the model writes."""
    values: dict[str, Any] = {"answer": text}
    if first:
        values["first_text_at"] = now
    return _update(session, turn_id, (TurnState.ANSWERING,), **values)


def finish(session: Session, turn_id: uuid.UUID, end: AnswerEnd, now: dt.datetime,
           first_text_at: dt.datetime | None) -> bool:
    """``answering -> answered`` with the final text, its boxes and the record."""
    values: dict[str, Any] = {"state": TurnState.ANSWERED, "answer": end.text, "boxes": end.boxes,
                              "generation": end.generation, "answered_at": now}
    if first_text_at is not None:
        values["first_text_at"] = first_text_at
    return _update(session, turn_id, (TurnState.ANSWERING,), **values)


def fail(session: Session, turn_id: uuid.UUID, error: RadAssistError, now: dt.datetime, *,
         answer: str | None = None) -> bool:
    """End an open turn with the reason (and whatever part of the answer was written)."""
    values: dict[str, Any] = {"state": TurnState.FAILED, "error_code": error.code,
                              "error_message": error.message[:2000], "answered_at": now}
    if answer is not None:
        values["answer"] = answer
    return _update(session, turn_id, OPEN_STATES, **values)


def waiting(session: Session, limit: int = 1) -> list[uuid.UUID]:
    """Questions no worker has taken yet, oldest first."""
    return list(session.scalars(
        select(ConversationTurn.id).where(ConversationTurn.state == TurnState.PENDING)
        .order_by(ConversationTurn.asked_at, ConversationTurn.id).limit(limit)
    ))


def _stale_condition(settings: ConversationSettings, now: dt.datetime) -> Any:
    waited = now - dt.timedelta(seconds=settings.wait_limit_s)
    silent = now - dt.timedelta(seconds=settings.answer_time_limit_s + WORKER_SILENCE_SLACK_S)
    return or_(
        (ConversationTurn.state == TurnState.PENDING) & (ConversationTurn.asked_at < waited),
        (ConversationTurn.state == TurnState.ANSWERING) & (ConversationTurn.started_at < silent),
    )


def expire_stale(session: Session, settings: ConversationSettings, now: dt.datetime, *conditions: Any) -> int:
    """Give up questions nobody took in time and answers whose worker went silent; how many.

    Looks before it writes, so that a call finding nothing takes no write lock.
    """
    stale = session.execute(
        select(ConversationTurn.id, ConversationTurn.state).where(_stale_condition(settings, now), *conditions)
    ).all()
    expired = 0
    for turn_id, state in stale:
        if state is TurnState.PENDING:
            error = PermanentFailure(
                f"no drafting worker took the question within {settings.wait_limit_s:g} s; ask again",
                code="conversation.expired")
        else:
            error = PermanentFailure("the worker writing the answer stopped; ask again", code="conversation.worker_lost")
        expired += fail(session, turn_id, error, now)
    return expired
