"""Models side by side: each model's figures, each shadow model against the live drafts of the same
studies, and each model's drift figure.

A shadow model is compared on the studies both it and a live model drafted (the newest draft of each
kind per study) with :func:`radassist.quality.paired_difference`: each resample draws the same
studies from both, so how hard the studies were cancels out; an interval that excludes 0 is a
difference the data support.  Drift is judged by :func:`radassist.quality.drift_status` over the
last ``[quality] drift_window_days`` of each model's pairs, live and shadow apart.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from radassist.config.quality import QualitySettings
from radassist.quality import PairTable, drift_status, figure, paired_difference
from radassist.quality.figures import number
from radassist.quality.summary import LOWER_IS_BETTER
from radassist.read.quality_pairs import LoadedPair, load_pairs
from radassist.read.quality_rows import Difference, ModelDrift, ModelRow, QualityFilter, ShadowComparison

COMPARED: tuple[tuple[str, str], ...] = (
    ("finding_f1_micro", "Finding F1 (micro)"),
    ("critical_miss_rate", "Critical miss rate"),
    ("rouge_l", "ROUGE-L"),
    ("edit_rate_median", "Median edit rate"),
)


def _value(table: PairTable, metric: str) -> float | None:
    return number(figure(table, metric)) if len(table) else None


def model_rows(pairs: Sequence[LoadedPair]) -> tuple[ModelRow, ...]:
    """Each (model, shadow) with its figures; live models first, then by name."""
    groups: dict[tuple[bool, str], list[LoadedPair]] = defaultdict(list)
    for pair in pairs:
        groups[(pair.shadow, pair.model_name)].append(pair)
    rows = []
    for (shadow, model), members in sorted(groups.items()):
        table = PairTable.from_pairs([p.metrics for p in members])
        rows.append(ModelRow(model, shadow, len(table), _value(table, "finding_f1_micro"), _value(table, "rouge_l"),
                             _value(table, "edit_rate_median"), _value(table, "critical_miss_rate")))
    return tuple(rows)


def _newest_per_study(pairs: Sequence[LoadedPair]) -> dict[uuid.UUID, LoadedPair]:
    newest: dict[uuid.UUID, LoadedPair] = {}
    for pair in pairs:  # oldest first: a later draft of the study replaces an earlier one
        newest[pair.study_id] = pair
    return newest


def shadow_comparisons(pairs: Sequence[LoadedPair], settings: QualitySettings) -> tuple[ShadowComparison, ...]:
    """Each shadow model minus the live drafts, over the studies both drafted."""
    live = _newest_per_study([p for p in pairs if not p.shadow])
    shadows: dict[str, list[LoadedPair]] = defaultdict(list)
    for pair in pairs:
        if pair.shadow:
            shadows[pair.model_name].append(pair)
    out = []
    for model, members in sorted(shadows.items()):
        mine = _newest_per_study(members)
        studies = sorted((s for s in mine if s in live), key=str)
        if not studies:
            continue
        table_a = PairTable.from_pairs([live[s].metrics for s in studies])
        table_b = PairTable.from_pairs([mine[s].metrics for s in studies])
        differences = []
        for metric, title in COMPARED:
            interval = paired_difference(table_a, table_b, metric, samples=settings.bootstrap_samples,
                                         confidence=settings.bootstrap_confidence, seed=settings.bootstrap_seed)
            differences.append(Difference(metric, title, _value(table_a, metric), _value(table_b, metric),
                                          number(interval.estimate), number(interval.low), number(interval.high),
                                          metric in LOWER_IS_BETTER))
        live_models = tuple(sorted({live[s].model_name for s in studies}))
        out.append(ShadowComparison(model, live_models, len(studies), tuple(differences)))
    return tuple(out)


def drift_by_model(session: Session, settings: QualitySettings, now: dt.datetime) -> tuple[ModelDrift, ...]:
    """Each model's drift verdict over the last ``drift_window_days`` (live models first)."""
    window = QualityFilter(since=now - dt.timedelta(days=settings.drift_window_days), until=now, drafts="all")
    groups: dict[tuple[bool, str], list[LoadedPair]] = defaultdict(list)
    for pair in load_pairs(session, window):
        groups[(pair.shadow, pair.model_name)].append(pair)
    out = []
    for (shadow, model), members in sorted(groups.items()):
        status = drift_status(PairTable.from_pairs([p.metrics for p in members]), settings)
        out.append(ModelDrift(model, shadow, status.metric, number(status.figure), status.threshold, status.pairs,
                              status.drifted))
    return tuple(out)
