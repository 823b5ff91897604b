"""The conversation panel: one user's questions about a study's current draft and the model's answers.

A conversation is about the draft of the study's latest job; an older draft's conversations stay
stored (and audited) but are not shown.  Each answer is marked as an AI answer, unverified.  The
answer's text is read as it is while the model writes it, so any web process on any machine shows
the same progress.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config.conversation import ConversationSettings
from radassist.db.tables import ConversationTurn, Draft, Job, Study
from radassist.states import TurnState


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One question and the model's answer (or its text so far, or the reason there is none)."""

    id: uuid.UUID
    number: int
    question: str
    answer: str
    state: TurnState
    error_code: str | None
    error_message: str | None
    model_name: str | None
    model_revision: str | None
    turns_left_out: int
    """Earlier turns the model did not see (they did not fit its context budget)."""
    asked_at: dt.datetime
    started_at: dt.datetime | None
    first_text_at: dt.datetime | None
    answered_at: dt.datetime | None
    job_id: uuid.UUID
    boxes: tuple[dict[str, Any], ...] = ()
    """Boxes on the kept pictures: ``picture`` (0-based), ``picture_label``, ``finding`` and the corners
    as fractions of the picture (``x_min``, ``y_min``, ``x_max``, ``y_max``)."""
    stopped: str | None = None
    """Why the answer ended: ``eos``, ``max_new_tokens`` (cut off at the length limit) or ``time_limit``."""
    ai_generated: bool = True
    verified: bool = False


@dataclass(frozen=True, slots=True)
class ConversationView:
    """The panel: the turns, whether another question can be asked now, and the limits."""

    study_id: uuid.UUID
    job_id: uuid.UUID | None
    draft_id: uuid.UUID | None
    model_name: str | None
    turns: tuple[TurnRow, ...] = ()
    can_ask: bool = False
    cannot_ask_because: str | None = None
    max_turns: int = 0
    max_question_chars: int = 0
    open_turn: bool = False
    """A question is waiting for, or getting, its answer."""
    limits: dict[str, Any] = field(default_factory=dict)


_COLUMNS = (ConversationTurn.id, ConversationTurn.number, ConversationTurn.question, ConversationTurn.answer,
            ConversationTurn.state, ConversationTurn.error_code, ConversationTurn.error_message,
            ConversationTurn.model_name, ConversationTurn.model_revision, ConversationTurn.turns_left_out,
            ConversationTurn.asked_at, ConversationTurn.started_at, ConversationTurn.first_text_at,
            ConversationTurn.answered_at, ConversationTurn.job_id, ConversationTurn.boxes, ConversationTurn.generation)


def _row(values: Any) -> TurnRow:
    record = dict(values._mapping)
    generation = record.pop("generation") or {}
    boxes = tuple(b for b in record.pop("boxes") or () if isinstance(b, dict))
    return TurnRow(**record, boxes=boxes, stopped=generation.get("stopped"))


def turns_of(session: Session, draft_id: uuid.UUID, user_name: str) -> tuple[TurnRow, ...]:
    """One user's conversation about one draft, in order."""
    result = session.execute(
        select(*_COLUMNS).where(ConversationTurn.draft_id == draft_id, ConversationTurn.user_name == user_name)
        .order_by(ConversationTurn.number)
    )
    return tuple(_row(r) for r in result)


def _reason(settings: ConversationSettings, draft_id: uuid.UUID | None, turns: tuple[TurnRow, ...],
            open_turn: bool) -> str | None:
    if not settings.enabled:
        return "Questions to the model are turned off on this installation."
    if draft_id is None:
        return "The study has no draft to ask about yet."
    if len(turns) >= settings.max_turns:
        return f"This conversation has reached its {settings.max_turns} questions."
    if open_turn:
        return "The previous question is still being answered."
    return None


def conversation_view(session: Session, settings: ConversationSettings, study_id: uuid.UUID,
                      user_name: str) -> ConversationView | None:
    """The user's conversation about the study's current draft; None when there is no such study."""
    if session.scalar(select(Study.id).where(Study.id == study_id)) is None:
        return None
    latest = session.execute(
        select(Job.id, Draft.id, Draft.model_name).outerjoin(Draft, Draft.job_id == Job.id)
        .where(Job.study_id == study_id).order_by(Job.created_at.desc(), Job.id.desc()).limit(1)
    ).one_or_none()
    job_id, draft_id, model_name = latest if latest is not None else (None, None, None)
    turns = turns_of(session, draft_id, user_name) if draft_id is not None else ()
    open_turn = any(t.state in (TurnState.PENDING, TurnState.ANSWERING) for t in turns)
    reason = _reason(settings, draft_id, turns, open_turn)
    return ConversationView(
        study_id=study_id, job_id=job_id, draft_id=draft_id, model_name=model_name, turns=turns,
        can_ask=reason is None, cannot_ask_because=reason, max_turns=settings.max_turns,
        max_question_chars=settings.max_question_chars, open_turn=open_turn,
        limits={"questions_per_hour": settings.questions_per_hour, "answer_time_limit_s": settings.answer_time_limit_s,
                "max_answer_tokens": settings.max_answer_tokens},
    )


def kept_picture_job(session: Session, study_id: uuid.UUID, job_id: uuid.UUID) -> bool:
    """True when ``job_id`` is a job of ``study_id`` (whose kept pictures the study's page may show)."""
    return session.scalar(select(Job.id).where(Job.id == job_id, Job.study_id == study_id)) is not None
