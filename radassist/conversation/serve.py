"""Answering questions on a drafting worker: questions go before routine drafts.

:func:`answer_waiting` answers every question waiting, oldest first.  The answer task runs it, and
so does every drafting run before it claims its batch: whichever message a drafting worker takes
next -- a question's or a routine draft's -- the questions waiting are answered first, so a question
never waits for more than the batch already running, on any broker and with any number of workers
(each question is taken by one of them: :func:`radassist.conversation.turns.claim`).

One answer (:func:`answer_turn`): take the question, gather what the model is given
(:mod:`radassist.conversation.context`; the pictures kept when the draft was made), fit it into the
model's context budget, record it, then stream the answer into the turn's row as it is written
(at most every ``[conversation] stream_write_interval_s``), and end the turn with the answer, its
boxes and its figures -- or with the reason there is none.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.conversation import turns
from radassist.conversation.boxes import place_boxes
from radassist.conversation.chat import DEFAULT_CONTEXT_TOKENS, ChatModel, StreamEnd, chat_for
from radassist.conversation.context import PROMPT_VERSION, Conversation, fit, prompt_text
from radassist.conversation.gather import Gathered, gather
from radassist.db.base import utcnow
from radassist.db.handles import handle_of_study
from radassist.errors import PermanentFailure, RadAssistError
from radassist.grounding.geometry import Size
from radassist.logging import log_context

logger = logging.getLogger(__name__)

Sessions = Callable[[], AbstractContextManager[Session]]


class PartialWriter:
    """Saves the answer so far into the turn's row, at most every ``interval`` seconds (the first piece at once)."""

    def __init__(self, sessions: Sessions, turn_id: uuid.UUID, interval: float) -> None:
        self.sessions, self.turn_id, self.interval = sessions, turn_id, interval
        self.text = ""
        self.writes = 0
        self.first_at: Any = None
        self._last = 0.0

    def add(self, piece: str) -> None:
        self.text += piece
        if self.writes == 0 or time.monotonic() - self._last >= self.interval:
            self.write()

    def write(self) -> None:
        now = utcnow()
        with self.sessions() as session:
            turns.save_partial(session, self.turn_id, self.text, now, first=self.writes == 0)
            session.commit()
        if self.writes == 0:
            self.first_at = now
        self.writes += 1
        self._last = time.monotonic()


def budget(settings: Settings, chat: ChatModel) -> int:
    return settings.conversation.context_tokens or chat.context_limit() or DEFAULT_CONTEXT_TOKENS


def _fail(sessions: Sessions, turn_id: uuid.UUID, error: RadAssistError, writer: PartialWriter) -> None:
    """End the turn with the reason, keeping whatever part of the answer was written."""
    with sessions() as session:
        turns.fail(session, turn_id, error, utcnow(), answer=writer.text or None)
        session.commit()
    logger.warning("question not answered: %s", error.code)


def _ready(sessions: Sessions, settings: Settings,
           turn_id: uuid.UUID) -> tuple[Gathered, ChatModel, Conversation, int]:
    """What the model is given, fitted to its budget, and the model; recorded on the turn."""
    from radassist.drafting.generate import model_settings_for
    from radassist.models.loader import get_draft_model

    with sessions() as session:
        gathered = gather(session, settings, turn_id)
    chat = chat_for(get_draft_model(model_settings_for(settings.model, gathered.model_name)))
    limits = settings.conversation
    conversation, tokens = fit(gathered.conversation, budget=budget(settings, chat), answer_tokens=limits.max_answer_tokens,
                       count=chat.count, count_text=chat.count_text)
    record = turns.AnswerRecord(chat.name, chat.revision, prompt_text(conversation),
                                f"{gathered.draft_prompt_version}+{PROMPT_VERSION}", conversation.left_out)
    with sessions() as session:
        turns.begin(session, turn_id, record)
        session.commit()
    return gathered, chat, conversation, tokens


def _end(gathered: Gathered, chat: ChatModel, conversation: Conversation, writer: PartialWriter,
         end: StreamEnd, started: float, settings: Settings, prompt_tokens: int) -> turns.AnswerEnd:
    sizes = [Size(*image.size) for image in conversation.images]
    placed = place_boxes(writer.text, chat.box_grammar(), sizes, conversation.labels, chat.picture_steps)
    limits = settings.conversation
    generation = {
        **chat.describe(), "seconds": round(time.perf_counter() - started, 3), "new_tokens": end.new_tokens,
        "stopped": end.stopped, "max_new_tokens": limits.max_answer_tokens, "time_limit_s": limits.answer_time_limit_s,
        "context_budget": budget(settings, chat), "prompt_tokens": prompt_tokens, "images": len(conversation.images),
        "image_labels": list(conversation.labels), "pictures_from": gathered.pictures_from,
        "partial_writes": writer.writes, "boxes_dropped": placed.dropped, "ai_generated": True, "verified": False,
    }
    return turns.AnswerEnd(placed.text.strip() or writer.text.strip(), placed.boxes, generation)


def _write(sessions: Sessions, settings: Settings, turn_id: uuid.UUID, writer: PartialWriter, started: float) -> None:
    """Stream the answer into the turn's row, then end the turn with it."""
    gathered, chat, conversation, tokens = _ready(sessions, settings, turn_id)
    limits, end = settings.conversation, StreamEnd()
    with sessions() as session:
        handle = handle_of_study(session, gathered.study_id)
    with log_context(study=handle, job_id=gathered.job_id):
        for piece in chat.stream(conversation, max_new_tokens=limits.max_answer_tokens,
                                 time_limit_s=limits.answer_time_limit_s, end=end):
            writer.add(piece)
        answer = _end(gathered, chat, conversation, writer, end, started, settings, tokens)
        if not answer.text and end.stopped == "time_limit":
            raise PermanentFailure(f"no answer within {limits.answer_time_limit_s:g} s", code="model.timeout")
        if not answer.text:
            raise PermanentFailure("the model wrote no answer", code="model.empty_output")
        with sessions() as session:
            turns.finish(session, turn_id, answer, utcnow(), writer.first_at)
            session.commit()
        logger.info("question answered in %.2f s (%s, %d partial writes)", time.perf_counter() - started,
                    end.stopped, writer.writes)


def answer_turn(sessions: Sessions, settings: Settings, turn_id: uuid.UUID) -> bool:
    """Answer one question if it is still waiting; True when this call took it."""
    with sessions() as session:
        taken = turns.claim(session, turn_id, utcnow())
        session.commit()
    if not taken:
        return False
    started = time.perf_counter()
    writer = PartialWriter(sessions, turn_id, settings.conversation.stream_write_interval_s)
    try:
        _write(sessions, settings, turn_id, writer, started)
    except RadAssistError as exc:
        _fail(sessions, turn_id, exc, writer)
    except SoftTimeLimitExceeded:
        _fail(sessions, turn_id, PermanentFailure("answering exceeded the task's time limit", code="model.timeout"),
              writer)
        raise
    except Exception as exc:  # a bug or a library failure: the radiologist is told, never left waiting
        logger.exception("answering failed unexpectedly")
        _fail(sessions, turn_id, PermanentFailure(f"answering failed ({type(exc).__name__})",
                                                  code="conversation.error"), writer)
    return True


def answer_waiting(sessions: Sessions, settings: Settings, *, stop: Callable[[], bool] = lambda: False) -> int:
    """Answer the questions waiting, oldest first, until none is left or ``stop()``; how many were taken."""
    answered = 0
    while not stop():
        with sessions() as session:
            turns.expire_stale(session, settings.conversation, utcnow())
            waiting = turns.waiting(session)
            session.commit()
        if not waiting:
            break
        answered += answer_turn(sessions, settings, waiting[0])
    return answered
