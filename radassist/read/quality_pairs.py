"""The measured pairs of a window and slice, loaded once for every figure the read side shows.

A pair counts when its measurement is the draft's ``current`` one (against the study's newest final
report) and succeeded; the window is by when the draft was written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from radassist.db.tables import DraftMeasurement
from radassist.quality import PairMetrics
from radassist.quality.slices import SLICES
from radassist.read.quality_rows import QualityFilter


@dataclass(frozen=True)
class LoadedPair:
    """A measured pair as the read side needs it: where it belongs, and its figures."""

    study_id: uuid.UUID
    draft_id: uuid.UUID
    drafted_at: dt.datetime
    model_name: str
    shadow: bool
    modality: str | None
    metrics: PairMetrics


def conditions(where: QualityFilter, *, measured: bool = True) -> list[ColumnElement[bool]]:
    """The SQL conditions of ``where`` on ``draft_measurements`` (``measured=False``: the failed ones)."""
    m = DraftMeasurement
    found: list[ColumnElement[bool]] = [
        m.current.is_(True),
        m.error_code.is_(None) if measured else m.error_code.is_not(None),
        m.drafted_at >= where.since,
        m.drafted_at < where.until,
    ]
    for name in SLICES:
        value = getattr(where, name)
        if value is not None:
            found.append(getattr(m, name) == value)
    if where.drafts != "all":
        found.append(m.shadow.is_(where.drafts == "shadow"))
    return found


def load_pairs(session: Session, where: QualityFilter) -> list[LoadedPair]:
    """The window's and slice's measured pairs, oldest draft first."""
    m = DraftMeasurement
    stmt = (
        select(m.study_id, m.draft_id, m.drafted_at, m.model_name, m.shadow, m.modality, m.metrics)
        .where(*conditions(where))
        .order_by(m.drafted_at, m.id)
    )
    return [
        LoadedPair(r.study_id, r.draft_id, r.drafted_at, r.model_name, r.shadow, r.modality,
                   PairMetrics.from_dict(r.metrics))
        for r in session.execute(stmt)
        if r.metrics
    ]


def count_pairs(session: Session, where: QualityFilter) -> int:
    """How many measured pairs ``where`` selects (cheaper than loading them)."""
    stmt = select(func.count()).select_from(DraftMeasurement).where(*conditions(where))
    return int(session.scalar(stmt) or 0)


def count_not_measured(session: Session, where: QualityFilter) -> int:
    """Pairs of ``where`` whose measurement failed (kept with an error code, in no figure)."""
    stmt = select(func.count()).select_from(DraftMeasurement).where(*conditions(where, measured=False))
    return int(session.scalar(stmt) or 0)
