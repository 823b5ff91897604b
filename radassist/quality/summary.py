"""Figures over a set of pairs (a window, a slice, an evaluation run), as columns the bootstrap can resample.

:class:`PairTable` turns :class:`~radassist.quality.metrics.PairMetrics` into numpy columns; every
statistic in :data:`STATISTICS` takes the table and an array of row indices (one resample per row
of a 2-D array) and returns one figure per resample, so a bootstrap of thousands of resamples is a
few array operations.  The figures:

* ``edit_rate_median``, ``edit_rate_mean``, ``rouge_l``, ``bleu4``, ``chrf``, ``finding_agreement``:
  the median or mean of the per-pair values;
* ``finding_f1_micro``, ``finding_f1_macro``: from TP/FP/FN summed over the pairs, as
  :mod:`radassist.quality.agreement` defines them (macro over the findings defined in that sample);
* ``critical_miss_rate``: the share of pairs with at least one critical miss;
* ``laterality_swap_rate``: the share of pairs with at least one left/right swap.

Pairs measured over different vocabularies may be mixed: a finding outside a pair's vocabulary is
simply never positive in it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from radassist.quality.agreement import FindingSummary, summarise_findings
from radassist.quality.metrics import PairMetrics

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class PairTable:
    """Per-pair values of a set of pairs, one row per pair (build with :meth:`from_pairs`)."""

    values: dict[str, FloatArray]
    findings: tuple[str, ...]
    draft_positive: npt.NDArray[np.bool_]
    final_positive: npt.NDArray[np.bool_]
    pairs: tuple[PairMetrics, ...]

    @classmethod
    def from_pairs(cls, pairs: Sequence[PairMetrics]) -> PairTable:
        names = tuple(dict.fromkeys(row.finding for pair in pairs for row in pair.findings))
        column = {name: index for index, name in enumerate(names)}
        draft = np.zeros((len(pairs), len(names)), dtype=bool)
        final = np.zeros_like(draft)
        for i, pair in enumerate(pairs):
            for row in pair.findings:
                draft[i, column[row.finding]] = row.draft.counts_positive
                final[i, column[row.finding]] = row.final.counts_positive

        def col(get: Callable[[PairMetrics], float]) -> FloatArray:
            return np.array([get(p) for p in pairs], dtype=np.float64)

        values = {
            "edit_rate": col(lambda p: p.text.edit_rate),
            "rouge_l": col(lambda p: p.text.rouge_l),
            "bleu4": col(lambda p: p.text.bleu4),
            "chrf": col(lambda p: p.text.chrf),
            "finding_agreement": col(lambda p: p.finding_agreement),
            "critical_miss": col(lambda p: float(bool(p.critical_misses))),
            "laterality_swap": col(lambda p: float(bool(p.laterality.swaps))),
        }
        return cls(values, names, draft, final, tuple(pairs))

    def __len__(self) -> int:
        return len(self.pairs)

    def findings_summary(self) -> FindingSummary:
        """Per-finding precision/recall/F1 and micro/macro F1 over every pair of the table."""
        return summarise_findings(pair.findings for pair in self.pairs)


def _counts(table: PairTable, idx: IndexArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """TP, FP, FN per finding for each resample: arrays of shape (resamples, findings)."""
    draft, final = table.draft_positive[idx], table.final_positive[idx]
    tp = (draft & final).sum(axis=-2)
    fp = (draft & ~final).sum(axis=-2)
    fn = (~draft & final).sum(axis=-2)
    return tp.astype(np.float64), fp.astype(np.float64), fn.astype(np.float64)


def _micro_f1(table: PairTable, idx: IndexArray) -> FloatArray:
    tp, fp, fn = (c.sum(axis=-1) for c in _counts(table, idx))
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 1.0)


def _macro_f1(table: PairTable, idx: IndexArray) -> FloatArray:
    tp, fp, fn = _counts(table, idx)
    denominator = 2 * tp + fp + fn
    per_finding = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)
    defined = (denominator > 0).sum(axis=-1)
    total = np.nansum(per_finding, axis=-1)
    return np.where(defined > 0, total / np.maximum(defined, 1), np.nan)


def _mean(name: str) -> Callable[[PairTable, IndexArray], FloatArray]:
    return lambda table, idx: np.asarray(table.values[name][idx].mean(axis=-1), dtype=np.float64)


Statistic = Callable[[PairTable, IndexArray], FloatArray]

STATISTICS: dict[str, Statistic] = {
    "edit_rate_median": lambda table, idx: np.asarray(np.median(table.values["edit_rate"][idx], axis=-1)),
    "edit_rate_mean": _mean("edit_rate"),
    "rouge_l": _mean("rouge_l"),
    "bleu4": _mean("bleu4"),
    "chrf": _mean("chrf"),
    "finding_agreement": _mean("finding_agreement"),
    "finding_f1_micro": _micro_f1,
    "finding_f1_macro": _macro_f1,
    "critical_miss_rate": _mean("critical_miss"),
    "laterality_swap_rate": _mean("laterality_swap"),
}
LOWER_IS_BETTER = frozenset({"edit_rate_median", "edit_rate_mean", "critical_miss_rate", "laterality_swap_rate"})


def statistic(name: str) -> Statistic:
    """The statistic called ``name`` (a key of :data:`STATISTICS`); a ``ValueError`` names the known ones."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise ValueError(f"metric must be one of {sorted(STATISTICS)}, not {name!r}") from None


def figure(table: PairTable, name: str) -> float:
    """The value of statistic ``name`` over every pair of ``table`` (NaN for an empty table)."""
    if not len(table):
        return float("nan")
    return float(statistic(name)(table, np.arange(len(table))))
