"""The headline figures over a set of pairs, by name and title, each with its bootstrap interval.

The Quality page, the metrics and ``radassist eval`` show the same figures in the same order, with
intervals computed under the same ``[quality]`` settings (samples, confidence, seed).  A figure that
is undefined (NaN) is given as None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from radassist.config.quality import QualitySettings
from radassist.quality.bootstrap import bootstrap_interval
from radassist.quality.summary import LOWER_IS_BETTER, PairTable

FIGURES: tuple[tuple[str, str], ...] = (
    ("finding_f1_micro", "Finding F1 (micro)"),
    ("finding_f1_macro", "Finding F1 (macro)"),
    ("finding_agreement", "Finding agreement"),
    ("critical_miss_rate", "Critical miss rate"),
    ("laterality_swap_rate", "Laterality swap rate"),
    ("edit_rate_median", "Median edit rate"),
    ("rouge_l", "ROUGE-L"),
    ("bleu4", "BLEU-4"),
    ("chrf", "chrF"),
)
"""The headline figures, in the order they are shown."""
TITLES = dict(FIGURES)


def number(value: float | None) -> float | None:
    """``value`` as a float, None for NaN (an undefined figure)."""
    return None if value is None or math.isnan(value) else float(value)


@dataclass(frozen=True)
class Estimate:
    metric: str
    title: str
    value: float | None
    low: float | None
    high: float | None
    lower_is_better: bool


def estimate(table: PairTable, metric: str, settings: QualitySettings) -> Estimate:
    """``metric`` over ``table`` with its bootstrap interval (all None for an empty table)."""
    title, lower = TITLES.get(metric, metric), metric in LOWER_IS_BETTER
    if not len(table):
        return Estimate(metric, title, None, None, None, lower)
    interval = bootstrap_interval(table, metric, samples=settings.bootstrap_samples,
                                  confidence=settings.bootstrap_confidence, seed=settings.bootstrap_seed)
    return Estimate(metric, title, number(interval.estimate), number(interval.low), number(interval.high), lower)
