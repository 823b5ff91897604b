"""``[conversation]``: radiologists asking the model about a study, and the limits on it."""

from __future__ import annotations

from pydantic import Field

from radassist.config.common import Section


class ConversationSettings(Section):
    """Questions a radiologist asks the model about a drafted study, from the study page or the API."""

    enabled: bool = True
    """Radiologists and admins may ask the model about a study's draft. Off: the panel says so and the API
    refuses questions (409)."""
    max_turns: int = Field(20, ge=1, le=200)
    """Most questions in one conversation (one radiologist, one draft)."""
    questions_per_hour: int = Field(60, ge=1)
    """Most questions one user may ask in any hour, across all studies; more are refused (429)."""
    max_question_chars: int = Field(2000, ge=10, le=20000)
    """Longest question accepted, in characters."""
    max_answer_tokens: int = Field(384, ge=8, le=8192)
    """Upper bound on the length of one answer, in tokens."""
    answer_time_limit_s: float = Field(120.0, gt=0)
    """Wall-clock limit of writing one answer; an answer cut off by it is kept and marked as cut off."""
    wait_limit_s: float = Field(600.0, gt=0)
    """A question no drafting worker has started to answer within this long is given up
    (``conversation.expired``): the radiologist is told to ask again."""
    context_tokens: int = Field(0, ge=0)
    """The model's context budget in tokens (pictures, prompt, draft, conversation and answer). 0: the
    model's own limit when its configuration states one (transformers backend), else 8192. Older
    turns that do not fit are left out, and the answer says so."""
    stream_write_interval_s: float = Field(0.25, ge=0)
    """How often the partial text of an answer being written is saved for the page to show."""
