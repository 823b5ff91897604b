"""The label of one finding in one report, and how several mentions of it make one label.

Each finding of a vocabulary gets one of four labels per report, as the CheXpert labeler gives
them: ``positive`` (stated present), ``uncertain`` (possible, suspected, cannot be excluded),
``negative`` (stated absent) or ``absent`` (not mentioned).  A report that mentions a finding more
than once gets the strongest label of its mentions, in the order positive > uncertain > negative,
so "no pneumothorax on the right; small left apical pneumothorax" is positive for pneumothorax.

For F1 the positive class is positive *or* uncertain (the convention of the CheXbert-based F1
that report-generation papers quote): a draft that says "possible pneumothorax" where the final
says "pneumothorax" has found it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Label(StrEnum):
    POSITIVE = "positive"
    UNCERTAIN = "uncertain"
    NEGATIVE = "negative"
    ABSENT = "absent"

    @property
    def counts_positive(self) -> bool:
        """True for the positive class of F1 and of critical-miss flags: positive or uncertain."""
        return self in (Label.POSITIVE, Label.UNCERTAIN)


_STRENGTH = {Label.POSITIVE: 3, Label.UNCERTAIN: 2, Label.NEGATIVE: 1, Label.ABSENT: 0}


def strongest(labels: Iterable[Label]) -> Label:
    """The label of a finding mentioned with ``labels`` (``absent`` when there is none)."""
    return max(labels, key=_STRENGTH.__getitem__, default=Label.ABSENT)


class Side(StrEnum):
    """Where a finding is, when the report says: one side or both."""

    LEFT = "left"
    RIGHT = "right"
    BILATERAL = "bilateral"


def side_of(left: bool, right: bool) -> Side | None:
    """The side for a finding seen on the left and/or right; ``None`` when neither is stated."""
    if left and right:
        return Side.BILATERAL
    if left:
        return Side.LEFT
    if right:
        return Side.RIGHT
    return None
