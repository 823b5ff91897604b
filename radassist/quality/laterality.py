"""Which side each finding is on, and whether draft and final agree on it.

**In one report.**  The side words are ``left``, ``right`` (also in "left-sided"), and ``bilateral``,
``bilaterally``, ``both``, ``bibasilar``, ``bibasal`` (both sides).  Each side word belongs to the
nearest finding mention in its sentence, counted in tokens from the word to the mention's nearer
edge; on a tie the mention after the word wins ("left effusion, right pneumothorax").  A finding's
side is the union over its positive and uncertain mentions (left and right make bilateral);
negated mentions have no side to compare.

**Between draft and final.**  For every finding positive or uncertain in both, with a side stated in
both: ``agree`` when the sides are equal, ``swap`` when they are opposite (left against right),
``differ`` otherwise (one side against bilateral).  ``agreement`` is the share of these findings
that agree (``None`` when none can be compared); a swap is what a committee wants to see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from radassist.quality.labels import Side

LEFT_WORDS = frozenset({"left"})
RIGHT_WORDS = frozenset({"right"})
BOTH_WORDS = frozenset({"bilateral", "bilaterally", "both", "bibasilar", "bibasal", "bibasally"})

Outcome = Literal["agree", "swap", "differ"]


def side_word(word: str) -> tuple[bool, bool] | None:
    """(left, right) for a side word, ``None`` for any other word."""
    lower = word.lower()
    if lower in LEFT_WORDS:
        return True, False
    if lower in RIGHT_WORDS:
        return False, True
    if lower in BOTH_WORDS:
        return True, True
    return None


def nearest_mention(position: int, mentions: Sequence[tuple[int, int]]) -> int | None:
    """Index of the mention (token ``start``, ``end``) nearest token ``position``; ties go to the later one."""
    best: tuple[int, int] | None = None
    best_index: int | None = None
    for index, (start, end) in enumerate(mentions):
        distance = start - position if position < start else max(0, position - end + 1)
        key = (distance, 0 if start > position else 1)
        if best is None or key < best:
            best, best_index = key, index
    return best_index


@dataclass(frozen=True)
class LateralityComparison:
    finding: str
    draft: Side
    final: Side
    outcome: Outcome


@dataclass(frozen=True)
class LateralityResult:
    compared: tuple[LateralityComparison, ...]
    agreement: float | None
    swaps: tuple[str, ...]


def _outcome(draft: Side, final: Side) -> Outcome:
    if draft == final:
        return "agree"
    if {draft, final} == {Side.LEFT, Side.RIGHT}:
        return "swap"
    return "differ"


def compare_sides(draft: Mapping[str, Side | None], final: Mapping[str, Side | None]) -> LateralityResult:
    """Compare the sides of the findings positive or uncertain in both reports (the maps hold only those)."""
    compared = tuple(
        LateralityComparison(name, d, f, _outcome(d, f))
        for name, f in final.items()
        if f is not None and (d := draft.get(name)) is not None
    )
    agreement = sum(c.outcome == "agree" for c in compared) / len(compared) if compared else None
    return LateralityResult(compared, agreement, tuple(c.finding for c in compared if c.outcome == "swap"))
