"""Drift: is a model's figure over the last window past the site's threshold?

The caller picks the pairs (one model, the last ``[quality] drift_window_days``); this module
judges them: with fewer than ``drift_min_pairs`` pairs there is no verdict (``drifted`` is
``None``), else ``drifted`` is whether ``drift_metric`` fell below ``drift_threshold`` (rose above
it for a figure where lower is better, such as the median edit rate).
"""

from __future__ import annotations

from dataclasses import dataclass

from radassist.config.quality import QualitySettings
from radassist.quality.summary import LOWER_IS_BETTER, PairTable, figure


@dataclass(frozen=True)
class DriftStatus:
    metric: str
    figure: float | None
    threshold: float
    pairs: int
    drifted: bool | None


def drift_status(table: PairTable, settings: QualitySettings) -> DriftStatus:
    """The drift verdict for the pairs of one model in one window."""
    metric, threshold = settings.drift_metric, settings.drift_threshold
    if len(table) < settings.drift_min_pairs:
        return DriftStatus(metric, None, threshold, len(table), None)
    value = figure(table, metric)
    drifted = value > threshold if metric in LOWER_IS_BETTER else value < threshold
    return DriftStatus(metric, value, threshold, len(table), bool(drifted))
