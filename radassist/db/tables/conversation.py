"""Questions radiologists asked the model about a study's draft, and the model's answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, JSONVariant, enum_column, utcnow
from radassist.states import TurnState


class ConversationTurn(Base):
    """One question and its answer; a conversation is the turns of one user about one draft.

    The question is the radiologist's own words about the study and the answer the model's: both
    stay in this table (and the question in the audit log), never in a log line.  ``answer`` holds
    the text written so far while the turn is ``answering``, so any web process can show it.
    """

    __tablename__ = "conversation_turns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    draft_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    """1 for the first question of the conversation, then 2, 3..."""
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[TurnState] = mapped_column(enum_column(TurnState), default=TurnState.PENDING)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(256))
    model_revision: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(Text)
    """What the model was given, as text (each picture named by its place and label)."""
    prompt_version: Mapped[str | None] = mapped_column(String(32))
    turns_left_out: Mapped[int] = mapped_column(Integer, default=0)
    """Earlier turns of the conversation not shown to the model: they did not fit its context budget."""
    boxes: Mapped[list[dict[str, Any]]] = mapped_column(JSONVariant, default=list)
    """Boxes the answer drew, as fractions of the kept picture they lie on (``picture``, ``label``...)."""
    generation: Mapped[dict[str, Any]] = mapped_column(JSONVariant, default=dict)
    """Backend, tokens, why the answer stopped, pictures shown, partial writes."""
    asked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    """When a drafting worker took the question."""
    first_text_at: Mapped[dt.datetime | None]
    """When the first words of the answer were saved."""
    answered_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("draft_id", "user_name", "number", name="uq_conversation_turns_draft_user_number"),
        Index("ix_conversation_turns_state_asked_at", "state", "asked_at"),
        Index("ix_conversation_turns_user_name_asked_at", "user_name", "asked_at"),
    )

    def __repr__(self) -> str:
        return f"<ConversationTurn {self.id} {self.state}>"


__all__ = ["ConversationTurn"]
