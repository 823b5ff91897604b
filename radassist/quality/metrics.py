"""What one draft/final comparison yields: :class:`PairMetrics`, plain frozen data.

``dataclasses.asdict`` (:meth:`PairMetrics.to_dict`) gives JSON-able values (labels and sides are
``str`` enums) and :meth:`PairMetrics.from_dict` reads them back, so pairs can be stored with the
draft and summarised later without the labelers.  No report text is kept in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from radassist.quality.agreement import FindingComparison
from radassist.quality.labels import Label, Side
from radassist.quality.laterality import LateralityComparison, LateralityResult


@dataclass(frozen=True)
class TextMetrics:
    """How much the text changed (see :mod:`radassist.quality.text_metrics`)."""

    edit_rate: float
    substitutions: int
    deletions: int
    insertions: int
    final_words: int
    draft_words: int
    rouge_l: float
    bleu4: float
    chrf: float


@dataclass(frozen=True)
class PairMetrics:
    """How a draft compares with the final report of the same study (see docs/quality.md)."""

    profile: str
    vocabulary: str
    labeler: str
    text: TextMetrics
    findings: tuple[FindingComparison, ...]
    finding_agreement: float
    finding_f1: float
    critical: tuple[FindingComparison, ...]
    critical_misses: tuple[str, ...]
    critical_overcalls: tuple[str, ...]
    laterality: LateralityResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values (``dataclasses.asdict``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairMetrics:
        """The inverse of :meth:`to_dict` (e.g. for metrics read back from JSON)."""

        def comparisons(rows: Any) -> tuple[FindingComparison, ...]:
            return tuple(FindingComparison(r["finding"], Label(r["draft"]), Label(r["final"])) for r in rows)

        lat = data["laterality"]
        return cls(
            profile=data["profile"],
            vocabulary=data["vocabulary"],
            labeler=data["labeler"],
            text=TextMetrics(**data["text"]),
            findings=comparisons(data["findings"]),
            finding_agreement=float(data["finding_agreement"]),
            finding_f1=float(data["finding_f1"]),
            critical=comparisons(data["critical"]),
            critical_misses=tuple(data["critical_misses"]),
            critical_overcalls=tuple(data["critical_overcalls"]),
            laterality=LateralityResult(
                compared=tuple(
                    LateralityComparison(c["finding"], Side(c["draft"]), Side(c["final"]), c["outcome"])
                    for c in lat["compared"]
                ),
                agreement=lat["agreement"],
                swaps=tuple(lat["swaps"]),
            ),
        )
