"""A radiologist asks the model about a study: the question is checked, stored and audited.

A question is about the draft of the study's latest job, and belongs to the asking user's
conversation about that draft.  It is refused, with the reason and nothing stored, when questions
are turned off, the study has no draft, the user asked ``[conversation] questions_per_hour``
questions in the last hour, the conversation has ``max_turns`` turns, or its previous question is
still being answered.  An accepted question is one ``pending`` turn and one audit row (who asked
what about which study), committed by the caller, who then sends the answer task: the question's
text lives in those two rows only, never in a log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radassist.actions.outcome import Dispatch, audit
from radassist.broker import ANSWER_TASK
from radassist.config.conversation import ConversationSettings
from radassist.conversation.turns import OPEN_STATES, expire_stale
from radassist.db.tables import ConversationTurn, Draft, Job, Study

logger = logging.getLogger(__name__)

ACTION = "conversation.ask"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Asked:
    """The outcome of asking: the turn and the task to send, or the refusal's status and reason."""

    status: int
    code: str
    message: str
    turn_id: uuid.UUID | None = None
    dispatch: tuple[Dispatch, ...] = ()

    @property
    def ok(self) -> bool:
        return self.turn_id is not None


def clean_question(text: str, max_chars: int) -> str:
    """The question as stored: line ends unified, outer blanks removed; ValueError names what is wrong."""
    if not isinstance(text, str):
        raise ValueError("the question must be text")
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not cleaned:
        raise ValueError("the question is empty")
    if len(cleaned) > max_chars:
        raise ValueError(f"the question is longer than {max_chars} characters")
    if _CONTROL.search(cleaned):
        raise ValueError("the question holds control characters")
    return cleaned


def latest_draft(session: Session, study_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """The study's latest job and its draft (None when it has none yet); None when it has no job."""
    row = session.execute(
        select(Job.id, Draft.id).outerjoin(Draft, Draft.job_id == Job.id).where(Job.study_id == study_id)
        .order_by(Job.created_at.desc(), Job.id.desc()).limit(1)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def _refuse(session: Session, user: str, study_id: uuid.UUID, status: int, code: str, message: str) -> Asked:
    audit(session, user, ACTION, str(study_id), "refused", reason=code)
    return Asked(status, code, message)


def _check(session: Session, settings: ConversationSettings, study_id: uuid.UUID, user: str,
           now: dt.datetime) -> Asked | tuple[uuid.UUID, uuid.UUID, int]:
    """The refusal, or the job, draft and number of the new turn."""
    if not settings.enabled:
        return _refuse(session, user, study_id, 409, "conversation.disabled", "questions to the model are turned off")
    found = latest_draft(session, study_id)
    draft_id = found[1] if found is not None else None
    if found is None or draft_id is None:
        return _refuse(session, user, study_id, 409, "conversation.no_draft", "the study has no draft to ask about yet")
    job_id = found[0]
    mine = (ConversationTurn.draft_id == draft_id, ConversationTurn.user_name == user)
    expire_stale(session, settings, now, *mine)
    recent = session.scalar(select(func.count()).select_from(ConversationTurn).where(
        ConversationTurn.user_name == user, ConversationTurn.asked_at > now - dt.timedelta(hours=1)))
    if (recent or 0) >= settings.questions_per_hour:
        return _refuse(session, user, study_id, 429, "conversation.rate_limited",
                       f"you asked {settings.questions_per_hour} questions in the last hour; wait a little")
    count, last, open_turns = session.execute(
        select(func.count(), func.max(ConversationTurn.number),
               func.count().filter(ConversationTurn.state.in_(OPEN_STATES))).where(*mine)
    ).one()
    if count >= settings.max_turns:
        return _refuse(session, user, study_id, 409, "conversation.too_many_turns",
                       f"this conversation has reached its {settings.max_turns} questions")
    if open_turns:
        return _refuse(session, user, study_id, 409, "conversation.busy",
                       "the previous question is still being answered")
    return job_id, draft_id, (last or 0) + 1


def ask(session: Session, settings: ConversationSettings, study_id: uuid.UUID, user: str, question: str,
        now: dt.datetime) -> Asked:
    """Store the question as a ``pending`` turn and audit it, or refuse it; the caller commits.

    ``question`` must already be :func:`clean_question`'s result.
    """
    if session.get(Study, study_id) is None:
        return Asked(404, "conversation.no_study", "study not found")
    checked = _check(session, settings, study_id, user, now)
    if isinstance(checked, Asked):
        logger.info("question refused (%s)", checked.code)
        return checked
    job_id, draft_id, number = checked
    turn = ConversationTurn(study_id=study_id, job_id=job_id, draft_id=draft_id, user_name=user, number=number,
                            question=question, asked_at=now)
    session.add(turn)
    session.flush()
    audit(session, user, ACTION, str(study_id), "done", turn=str(turn.id), number=number, question=question)
    logger.info("question %d of a conversation stored as turn %s", number, turn.id)
    return Asked(202, "conversation.asked", "the question is waiting for the model", turn.id,
                 (Dispatch.of(ANSWER_TASK, str(turn.id)),))
