"""Prometheus gauges of draft quality, per model, over the drift window (``[quality] drift_window_days``).

The headline figures of the Quality page for each model (live and shadow apart) over the last
window, its drift figure, and ``radassist_quality_drift`` (1 when the figure is past
``drift_threshold``, 0 when not; absent with too few pairs to tell), which an alert can use:
``radassist_quality_drift == 1``.  Label values are model names (from the configuration) and
``true``/``false``; no study or patient is ever a label.  The figures are computed at most once a
minute (a scrape in between gets the same ones).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radassist.config.quality import QualitySettings
from radassist.db.base import utcnow
from radassist.db.tables import Draft, DraftVerdict, Job, Verdict
from radassist.read.quality_compare import drift_by_model, model_rows
from radassist.read.quality_pairs import load_pairs
from radassist.read.quality_rows import QualityFilter

logger = logging.getLogger(__name__)

CACHE_S = 60.0
LABELS = ["model", "shadow"]
ACCEPTED = (Verdict.USEFUL_AS_IS, Verdict.USEFUL_WITH_EDITS)


def acceptance_by_model(session: Session, since: dt.datetime) -> dict[tuple[str, bool], float]:
    """Share of verdicts accepting the draft (useful as is or with edits) per (model, shadow), drafts since ``since``."""
    stmt = (
        select(Draft.model_name, Job.shadow, DraftVerdict.verdict, func.count())
        .join(Draft, Draft.id == DraftVerdict.draft_id)
        .join(Job, Job.id == Draft.job_id)
        .where(Draft.created_at >= since)
        .group_by(Draft.model_name, Job.shadow, DraftVerdict.verdict)
    )
    totals: dict[tuple[str, bool], list[int]] = {}
    for model, shadow, verdict, n in session.execute(stmt):
        tally = totals.setdefault((model, bool(shadow)), [0, 0])
        tally[0] += int(n) if Verdict(verdict) in ACCEPTED else 0
        tally[1] += int(n)
    return {key: accepted / total for key, (accepted, total) in totals.items() if total}


def _families() -> dict[str, GaugeMetricFamily]:
    def gauge(name: str, text: str, labels: list[str] = LABELS) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"radassist_quality_{name}", text, labels=labels)

    return {
        "pairs": gauge("pairs", "Draft/final pairs measured over the drift window."),
        "finding_f1_micro": gauge("finding_f1", "Finding F1 (micro) over the drift window."),
        "rouge_l": gauge("rouge_l", "Mean ROUGE-L of draft against final over the drift window."),
        "edit_rate_median": gauge("edit_rate_median", "Median word edit rate over the drift window."),
        "critical_miss_rate": gauge("critical_miss_rate", "Share of pairs missing a critical finding."),
        "acceptance": gauge("acceptance_rate", "Share of verdicts useful as is or with edits."),
        "drift_figure": gauge("drift_figure", "The drift metric over the drift window.", [*LABELS, "metric"]),
        "drift": gauge("drift", "1 when the drift figure is past its threshold, 0 when not (absent: too few pairs)."),
        "threshold": GaugeMetricFamily("radassist_quality_drift_threshold", "The drift threshold.", labels=["metric"]),
    }


class QualityCollector(Collector):
    """The gauges above, read from the database (one short read-only transaction a minute)."""

    def __init__(self, sessions: sessionmaker[Session], settings: QualitySettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())  # declared so registering does not query the database

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if self._cached is None or self._clock() - self._cached[0] >= CACHE_S:
                try:
                    self._cached = (self._clock(), self._read(utcnow()))
                except SQLAlchemyError as exc:
                    logger.warning("quality metrics: database unavailable (%s)", type(exc).__name__)
                    return []
            return self._cached[1]

    def _read(self, now: dt.datetime) -> list[Metric]:
        settings = self._settings
        since = now - dt.timedelta(days=settings.drift_window_days)
        with self._sessions() as session:
            pairs = load_pairs(session, QualityFilter(since=since, until=now, drafts="all"))
            drift = drift_by_model(session, settings, now)
            accepted = acceptance_by_model(session, since)
        families = _families()
        for row in model_rows(pairs):
            labels = [row.model_name, str(row.shadow).lower()]
            families["pairs"].add_metric(labels, row.pairs)
            for name in ("finding_f1_micro", "rouge_l", "edit_rate_median", "critical_miss_rate"):
                value = getattr(row, name)
                if value is not None:
                    families[name].add_metric(labels, value)
        for (model, shadow), rate in sorted(accepted.items()):
            families["acceptance"].add_metric([model, str(shadow).lower()], rate)
        for d in drift:
            labels = [d.model_name, str(d.shadow).lower()]
            if d.figure is not None:
                families["drift_figure"].add_metric([*labels, d.metric], d.figure)
            if d.drifted is not None:
                families["drift"].add_metric(labels, 1.0 if d.drifted else 0.0)
        families["threshold"].add_metric([settings.drift_metric], settings.drift_threshold)
        return list(families.values())
