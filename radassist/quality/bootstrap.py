"""Bootstrap confidence intervals for a figure over a set of pairs, and for the difference of two runs.

Percentile bootstrap (Efron) by ``scipy.stats.bootstrap``: the pairs are resampled with replacement
``samples`` times, the figure is computed on each resample, and the interval is cut at the
(1 − confidence)/2 and (1 + confidence)/2 quantiles of those figures.  The generator is seeded, so
the same pairs and settings always give the same interval.  A whole pair is the unit resampled (its
findings stay together), which is what makes F1 intervals honest about study-to-study variation.

:func:`paired_difference` compares two runs over the **same studies in the same order** (e.g.
``radassist eval compare``, a shadow model against the main one): each resample draws the same
studies from both runs, so study difficulty cancels and the interval of B − A is narrower than two
separate intervals would suggest.  An interval that excludes 0 is a difference the data support.

A figure undefined on some resample (macro F1 with no positive finding in it) makes the interval
NaN: too few positive findings to say.  With a single pair the interval is that pair's value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from radassist.quality.summary import PairTable, Statistic, figure, statistic

BATCH = 200
"""Resamples evaluated at once (bounds memory at BATCH × pairs × findings booleans)."""


@dataclass(frozen=True)
class Interval:
    metric: str
    estimate: float
    low: float
    high: float
    confidence: float
    samples: int
    pairs: int

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (for differences)."""
        return self.low > 0 or self.high < 0


def _check(samples: int, confidence: float) -> None:
    if samples < 1:
        raise ValueError(f"samples must be positive, not {samples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, not {confidence}")


def _percentile_interval(
    n: int, stat: Any, *, samples: int, confidence: float, seed: int
) -> tuple[float, float]:
    result = stats.bootstrap(
        (np.arange(n),),
        stat,
        n_resamples=samples,
        batch=BATCH,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_interval(
    table: PairTable, metric: str, *, samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """The figure ``metric`` (see :data:`radassist.quality.summary.STATISTICS`) over ``table`` with its interval."""
    _check(samples, confidence)
    fn: Statistic = statistic(metric)
    n = len(table)
    if n == 0:
        raise ValueError("table must hold at least one pair")
    estimate = figure(table, metric)
    if n == 1 or math.isnan(estimate):
        return Interval(metric, estimate, estimate, estimate, confidence, samples, n)

    def stat(idx: Any, axis: int = -1) -> Any:
        return fn(table, np.asarray(idx, dtype=np.intp))

    low, high = _percentile_interval(n, stat, samples=samples, confidence=confidence, seed=seed)
    return Interval(metric, estimate, low, high, confidence, samples, n)


def paired_difference(
    run_a: PairTable, run_b: PairTable, metric: str, *, samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """``metric`` of run B minus run A over the same studies (row i of each is the same study), with its interval."""
    _check(samples, confidence)
    if len(run_a) != len(run_b):
        raise ValueError(f"run_a and run_b must hold the same studies ({len(run_a)} and {len(run_b)} pairs)")
    fn: Statistic = statistic(metric)
    n = len(run_a)
    if n == 0:
        raise ValueError("the runs must hold at least one pair")
    estimate = figure(run_b, metric) - figure(run_a, metric)
    if n == 1 or math.isnan(estimate):
        return Interval(metric, estimate, estimate, estimate, confidence, samples, n)

    def stat(idx: Any, axis: int = -1) -> Any:
        rows = np.asarray(idx, dtype=np.intp)
        return fn(run_b, rows) - fn(run_a, rows)

    low, high = _percentile_interval(n, stat, samples=samples, confidence=confidence, seed=seed)
    return Interval(metric, estimate, low, high, confidence, samples, n)
