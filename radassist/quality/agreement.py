"""Finding agreement between draft and final: per pair, and over a set of pairs.

The final report is the reference, the draft the prediction.  The positive class is positive or
uncertain (:mod:`radassist.quality.labels`).

**Per pair** (:func:`compare_findings`):

* each scored finding with its draft and final label; ``agreement`` is the share of the findings
  mentioned in either report (label other than absent) whose four-way labels are equal, 1 when
  neither report mentions any;
* ``f1``: 2·TP / (2·TP + FP + FN) over the scored findings, with TP a finding positive in both, FP
  positive in the draft only, FN in the final only; 1 when neither report has a positive finding
  (nothing to find, nothing wrongly found);
* ``critical_misses``: critical findings positive or uncertain in the final but absent or negated in
  the draft; ``critical_overcalls``: the reverse.

**Over a set** (:func:`summarise_findings`): per finding, TP/FP/FN summed over the pairs, precision
TP/(TP+FP), recall TP/(TP+FN) and F1 (each ``None`` when its denominator is 0); micro F1 from the
counts summed over every finding (1 when there is no positive at all, as per pair); macro F1 the
mean of the per-finding F1 over the findings where it is defined (a finding never positive on either
side says nothing about the drafts and is left out rather than counted as 0 or 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from radassist.quality.labels import Label


@dataclass(frozen=True)
class FindingComparison:
    finding: str
    draft: Label
    final: Label

    @property
    def agree(self) -> bool:
        return self.draft == self.final

    @property
    def true_positive(self) -> bool:
        return self.draft.counts_positive and self.final.counts_positive

    @property
    def false_positive(self) -> bool:
        return self.draft.counts_positive and not self.final.counts_positive

    @property
    def false_negative(self) -> bool:
        return self.final.counts_positive and not self.draft.counts_positive


@dataclass(frozen=True)
class FindingAgreement:
    findings: tuple[FindingComparison, ...]
    agreement: float
    f1: float
    critical: tuple[FindingComparison, ...]
    critical_misses: tuple[str, ...]
    critical_overcalls: tuple[str, ...]


def f1_score(tp: int, fp: int, fn: int) -> float | None:
    """2·TP / (2·TP + FP + FN), ``None`` when there is no positive on either side."""
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else None


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def compare_findings(
    names: Sequence[str],
    critical: Sequence[str],
    draft: dict[str, Label],
    final: dict[str, Label],
) -> FindingAgreement:
    """Compare the labels of the scored findings ``names`` and of the ``critical`` ones."""
    rows = tuple(FindingComparison(n, draft.get(n, Label.ABSENT), final.get(n, Label.ABSENT)) for n in names)
    mentioned = [r for r in rows if (r.draft, r.final) != (Label.ABSENT, Label.ABSENT)]
    agreement = sum(r.agree for r in mentioned) / len(mentioned) if mentioned else 1.0
    counts = [sum(getattr(r, kind) for r in rows) for kind in ("true_positive", "false_positive", "false_negative")]
    f1 = f1_score(*counts)
    crit = tuple(FindingComparison(n, draft.get(n, Label.ABSENT), final.get(n, Label.ABSENT)) for n in critical)
    return FindingAgreement(
        findings=rows,
        agreement=agreement,
        f1=1.0 if f1 is None else f1,
        critical=crit,
        critical_misses=tuple(c.finding for c in crit if c.false_negative),
        critical_overcalls=tuple(c.finding for c in crit if c.false_positive),
    )


@dataclass(frozen=True)
class FindingScore:
    """One finding's agreement over a set of pairs; the Quality page, the API and ``radassist eval``
    show it as it is."""

    finding: str
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    """Pairs whose final report has the finding (positive or uncertain)."""


@dataclass(frozen=True)
class FindingSummary:
    per_finding: tuple[FindingScore, ...]
    micro_f1: float
    macro_f1: float | None


def score_counts(finding: str, tp: int, fp: int, fn: int) -> FindingScore:
    return FindingScore(finding, tp, fp, fn, _ratio(tp, tp + fp), _ratio(tp, tp + fn), f1_score(tp, fp, fn), tp + fn)


def summarise_findings(pairs: Iterable[Sequence[FindingComparison]]) -> FindingSummary:
    """Per-finding precision/recall/F1 and micro/macro F1 over the findings of many pairs."""
    counts: dict[str, list[int]] = {}
    for rows in pairs:
        for row in rows:
            tally = counts.setdefault(row.finding, [0, 0, 0])
            tally[0] += row.true_positive
            tally[1] += row.false_positive
            tally[2] += row.false_negative
    scores = tuple(score_counts(name, *tally) for name, tally in counts.items())
    micro = f1_score(
        sum(s.true_positives for s in scores),
        sum(s.false_positives for s in scores),
        sum(s.false_negatives for s in scores),
    )
    defined = [s.f1 for s in scores if s.f1 is not None]
    return FindingSummary(scores, 1.0 if micro is None else micro, sum(defined) / len(defined) if defined else None)
