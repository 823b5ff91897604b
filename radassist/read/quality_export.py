"""The Quality page's CSV export: one line per measured pair of the window and slice.

Each line holds the pair's slices, headline figures, the critical findings missed, any left/right
swap and the verdicts given on the draft; the study is named by its surrogate id (as in the page's
links), never by a patient or accession number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import DraftMeasurement, DraftVerdict
from radassist.read.quality_pairs import conditions
from radassist.read.quality_rows import QualityFilter

COLUMNS: tuple[str, ...] = (
    "drafted_at", "study_id", "draft_id", "model_name", "model_revision", "prompt_version", "profile", "modality",
    "calling_ae_title", "patient_sex", "age_band", "shadow", "labeler", "vocabulary", "edit_rate", "rouge_l", "bleu4",
    "chrf", "finding_f1", "finding_agreement", "critical_misses", "laterality_swaps", "verdicts",
)
EXPORT_LIMIT = 100_000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """A value as CSV text a spreadsheet shows as text: a leading ``= + - @`` gets a ``'`` (no formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def export_rows(session: Session, where: QualityFilter) -> Iterator[list[str]]:
    """The header line, then one line per pair (oldest draft first, at most ``EXPORT_LIMIT``)."""
    m = DraftMeasurement
    stmt = select(m).where(*conditions(where)).order_by(m.drafted_at, m.id).limit(EXPORT_LIMIT)
    rows = list(session.scalars(stmt))
    given: dict[Any, list[str]] = defaultdict(list)
    draft_ids = [r.draft_id for r in rows]
    for start in range(0, len(draft_ids), 500):
        chunk = draft_ids[start : start + 500]
        for draft_id, verdict in session.execute(
            select(DraftVerdict.draft_id, DraftVerdict.verdict).where(DraftVerdict.draft_id.in_(chunk))
        ):
            given[draft_id].append(str(verdict))
    yield list(COLUMNS)
    for row in rows:
        metrics = row.metrics or {}
        values = {
            **{name: getattr(row, name) for name in COLUMNS if hasattr(row, name)},
            "critical_misses": "; ".join(metrics.get("critical_misses", ())),
            "laterality_swaps": "; ".join((metrics.get("laterality") or {}).get("swaps", ())),
            "verdicts": "; ".join(sorted(given.get(row.draft_id, ()))),
        }
        yield [cell(values.get(name)) for name in COLUMNS]
