"""Gather what the model is given for one question: the draft, the conversation so far, the pictures.

The pictures are the ones kept when the draft was made (:mod:`radassist.store.prepared`), so the
model sees exactly what it drafted from and nothing is decoded again.  A draft made before its
inputs were kept (or whose inputs could not be written) has its pictures prepared again from the
stored instances, with the same settings a draft would use; the answer records which
(``pictures_from``).  When neither is there -- retention removed the study's files -- the question
cannot be answered, and the radiologist is told why.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.conversation.context import Conversation, Exchange
from radassist.db.tables import ConversationTurn, Draft, Instance, Job
from radassist.errors import PermanentFailure, RadAssistError
from radassist.states import TurnState
from radassist.store.prepared import prepared_store


@dataclass(frozen=True)
class Gathered:
    """One question with everything the model is given, and where its pictures came from."""

    study_id: uuid.UUID
    job_id: uuid.UUID
    model_name: str
    """The model the job's pipeline chose: the one that wrote the draft answers its questions."""
    draft_prompt_version: str
    conversation: Conversation
    pictures_from: str
    """``kept`` (the draft's own pictures) or ``prepared again`` (from the stored instances)."""


def _earlier(session: Session, turn: ConversationTurn) -> tuple[Exchange, ...]:
    """The conversation's earlier answered turns, oldest first (failed ones are left out: no answer)."""
    rows = session.execute(
        select(ConversationTurn.question, ConversationTurn.answer)
        .where(ConversationTurn.draft_id == turn.draft_id, ConversationTurn.user_name == turn.user_name,
               ConversationTurn.number < turn.number, ConversationTurn.state == TurnState.ANSWERED)
        .order_by(ConversationTurn.number)
    ).all()
    return tuple(Exchange(q, a) for q, a in rows)


def _prepare_again(session: Session, settings: Settings, job: Job) -> tuple[tuple[Image.Image, ...], tuple[str, ...]]:
    from radassist.drafting.generate import model_settings_for
    from radassist.imaging.prepare import prepare_study
    from radassist.models.profiles import ProfileChooser

    relpaths = session.scalars(
        select(Instance.path).where(Instance.study_id == job.study_id).order_by(Instance.received_at)
    ).all()
    paths = [settings.storage.instances_dir / p for p in relpaths]
    if not paths or not all(p.is_file() for p in paths):
        raise PermanentFailure("the study's images are no longer kept (retention removed them)",
                               code="conversation.no_pictures")
    model = model_settings_for(settings.model, job.model_name)
    try:
        study = prepare_study(paths, image_size=model.image_size, max_images=model.max_images,
                              resolve=ProfileChooser(model))
    except RadAssistError as exc:
        raise PermanentFailure(f"the study's pictures could not be prepared again ({exc.code})",
                               code="conversation.no_pictures") from None
    return study.images, study.labels


def gather(session: Session, settings: Settings, turn_id: uuid.UUID) -> Gathered:
    """Everything the model is given for ``turn_id``; PermanentFailure when the question cannot be answered."""
    turn = session.get(ConversationTurn, turn_id)
    draft = session.get(Draft, turn.draft_id) if turn is not None else None
    job = session.get(Job, turn.job_id) if turn is not None else None
    if turn is None or draft is None or job is None:
        raise PermanentFailure("the question or its draft is gone", code="conversation.no_draft")
    kept = prepared_store(settings).load(job.id)
    if kept is not None:
        images, labels, source = kept.study.images, kept.study.labels, "kept"
    else:
        images, labels = _prepare_again(session, settings, job)
        source = "prepared again"
    conversation = Conversation(images=images, labels=labels, draft_prompt=draft.prompt, draft_text=draft.raw_text,
                                earlier=_earlier(session, turn), question=turn.question)
    return Gathered(turn.study_id, job.id, job.model_name, draft.prompt_version, conversation, source)
