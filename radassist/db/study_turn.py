"""A study's turn: a write to its row that changes nothing, taken before reading what to decide.

On PostgreSQL the write takes the row's lock, on SQLite the database's write lock; either is held
until the commit.  Two transactions that each take the turn before they read run one after the
other, and the second reads what the first committed.  Without it, under PostgreSQL's read
committed, each can read the other's work as not yet done (a write skew) and both act.
"""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from radassist.db.tables import Study


def take_study_turn(session: Session, study_id: uuid.UUID) -> None:
    """Hold ``study_id``'s row until the transaction ends."""
    session.execute(update(Study).where(Study.id == study_id).values(files_removed_at=Study.files_removed_at))


__all__ = ["take_study_turn"]
