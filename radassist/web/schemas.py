"""The JSON API's envelopes; the rows inside them are the read side's (:mod:`radassist.read.rows`).

Only what the screens show, never patient data.  Timestamps are timezone-aware UTC and serialise
as ISO-8601 with a ``Z`` suffix.
"""

from __future__ import annotations

from pydantic import BaseModel

from radassist.read.rows import StudyRow


class StudyPage(BaseModel):
    items: list[StudyRow]
    total: int
    total_capped: bool = False
    """True when a state-filtered total reached 10,000 and was not counted further ("10,000+")."""
    limit: int
    offset: int


class ActionOut(BaseModel):
    """An admin action's answer: done, or refused with the reason."""

    ok: bool
    message: str
