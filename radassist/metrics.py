"""Prometheus metrics: the per-process counters, and the database-derived gauges /metrics serves.

The listener, the workers and the web app are separate processes, so a counter only counts what its
own process did.  The web app's /metrics therefore also reports what the database knows at scrape
time (studies, jobs and deliveries by state, failures by error code), which is the same whichever
process is scraped.

Label values are enum values and stable error codes only: never a UID, an AE title, a destination
host or anything a sender chose.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radassist.db import queries

logger = logging.getLogger(__name__)

_LABEL_UNSAFE = re.compile(r"[^a-z0-9._-]+")

# Stages of radassist_job_duration_seconds, in pipeline order.
STAGES = ("waiting", "queued", "drafting", "delivering", "total")

INSTANCES_RECEIVED = Counter(
    "radassist_instances_received", "Instances stored and acknowledged with Success by this listener."
)
INSTANCES_REJECTED = Counter(
    "radassist_instances_rejected",
    "Instances refused by this listener, by error code.",
    ["reason"],
)
JOBS_FINISHED = Counter("radassist_jobs_finished", "Jobs this worker brought to a final state.", ["state"])
JOB_DURATION = Histogram(
    "radassist_job_duration_seconds",
    "Time a job spent in each stage (waiting = last instance to study complete).",
    ["stage"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
DELIVERIES = Counter(
    "radassist_deliveries",
    "Delivery attempts by this worker, by channel and outcome (delivered, retry, failed).",
    ["channel", "outcome"],
)

DELIVERY_DURATION = Histogram(
    "radassist_delivery_duration_seconds",
    "Time from a delivery's first attempt to its final state, by channel and outcome.",
    ["channel", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)


def observe_delivery(channel: str, outcome: str, seconds: float | None) -> None:
    """Record how long one delivery took to become final (``delivered`` or ``failed``)."""
    if seconds is not None and seconds >= 0 and outcome in ("delivered", "failed"):
        DELIVERY_DURATION.labels(channel=code_label(channel), outcome=outcome).observe(seconds)


def code_label(code: str | None) -> str:
    """An error code made safe as a label value: lower-case ``[a-z0-9._-]``, at most 64 characters."""
    if not code:
        return "unknown"
    cleaned = _LABEL_UNSAFE.sub("_", code.lower()).strip("_")[:64]
    return cleaned or "unknown"


def count_rejected(code: str | None) -> None:
    INSTANCES_REJECTED.labels(reason=code_label(code)).inc()


def observe_stage(stage: str, seconds: float | None) -> None:
    """Record one stage's duration; unknown stages and missing or negative figures are ignored."""
    if stage in STAGES and seconds is not None and seconds >= 0:
        JOB_DURATION.labels(stage=stage).observe(seconds)


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape (one short read-only transaction)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def describe(self) -> Iterable[Metric]:
        # Declared so registering the collector does not query the database.
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("radassist_db_up", "1 when the database answered this scrape, else 0."),
            GaugeMetricFamily("radassist_studies", "Studies by worklist state.", labels=["state"]),
            GaugeMetricFamily("radassist_jobs", "Jobs by state.", labels=["state"]),
            GaugeMetricFamily(
                "radassist_deliveries", "Deliveries by channel and state.", labels=["channel", "state"]
            ),
            GaugeMetricFamily(
                "radassist_failures",
                "Failed jobs and failed deliveries by error code.",
                labels=["source", "code"],
            ),
        )

    def collect(self) -> Iterable[Metric]:
        up, studies, jobs, deliveries, failures = self._families()
        try:
            with self._sessions() as session:
                study_counts = queries.counts_by_state(session)
                job_counts = queries.job_counts_by_state(session)
                delivery_counts = queries.delivery_counts(session)
                failure_counts = queries.failure_counts(session)
        except SQLAlchemyError as exc:
            logger.warning("metrics: database unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        for state, n in study_counts.items():
            studies.add_metric([state], n)
        for state, n in job_counts.items():
            jobs.add_metric([state], n)
        for (channel, state), n in delivery_counts.items():
            deliveries.add_metric([channel, state], n)
        merged: dict[tuple[str, str], int] = {}
        for (source, code), n in failure_counts.items():
            key = (source, code_label(code))
            merged[key] = merged.get(key, 0) + n
        for (source, code), n in sorted(merged.items()):
            failures.add_metric([source, code], n)
        return [up, studies, jobs, deliveries, failures]


class QueueCollector(Collector):
    """Messages waiting in each Celery queue, asked of the broker at scrape time (cached briefly)."""

    def __init__(self, depths: Callable[[], dict[str, int | None]]) -> None:
        self._depths = depths

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("radassist_queue_depth", "Messages waiting per Celery queue.", labels=["queue"])]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("radassist_queue_depth", "Messages waiting per Celery queue.", labels=["queue"])
        for queue, depth in self._depths().items():
            if depth is not None:
                family.add_metric([code_label(queue)], depth)
        return [family]


def database_registry(
    sessions: sessionmaker[Session], queue_depths: Callable[[], dict[str, int | None]] | None = None
) -> CollectorRegistry:
    """A registry holding only the database (and queue) gauges; one per web app, beside the process's default one."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(sessions))
    if queue_depths is not None:
        registry.register(QueueCollector(queue_depths))
    return registry
