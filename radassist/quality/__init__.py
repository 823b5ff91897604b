"""Quality measurement: how each draft compares with the radiologist's signed final report.

Pure functions over plain text in, frozen dataclasses out (JSON-able with ``dataclasses.asdict``):

* :func:`compare_pair` (one draft against its final: text change, finding agreement, critical
  misses, laterality) → :class:`PairMetrics`;
* :class:`PairTable` and :data:`STATISTICS` (figures over a set of pairs);
* :func:`bootstrap_interval` and :func:`paired_difference` (confidence intervals);
* :func:`drift_status` (a model's figure over a window against the site's threshold).

docs/quality.md says what every figure means and how it is computed.  Summarising stored pairs
needs numpy and scipy only: :func:`compare_pair`, :class:`Scorer` and :func:`scorer_for` (spaCy,
which loads torch through thinc, and the text-metric libraries) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from radassist.quality.agreement import FindingComparison, FindingScore, FindingSummary
from radassist.quality.bootstrap import Interval, bootstrap_interval, paired_difference
from radassist.quality.drift import DriftStatus, drift_status
from radassist.quality.labels import Label, Side
from radassist.quality.laterality import LateralityComparison, LateralityResult
from radassist.quality.metrics import PairMetrics, TextMetrics
from radassist.quality.summary import STATISTICS, PairTable, figure

if TYPE_CHECKING:
    from radassist.quality.pair import Scorer, compare_pair, scorer_for

_LAZY = {"Scorer", "compare_pair", "scorer_for"}

__all__ = [
    "STATISTICS", "DriftStatus", "FindingComparison", "FindingScore", "FindingSummary", "Interval", "Label",
    "LateralityComparison", "LateralityResult", "PairMetrics", "PairTable", "Scorer", "Side", "TextMetrics",
    "bootstrap_interval", "compare_pair", "drift_status", "figure", "paired_difference", "scorer_for",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("radassist.quality.pair"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
