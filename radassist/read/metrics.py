"""The gauges ``/metrics`` reads from the database at each scrape, and the broker's queue depths.

The listener, the workers and the web app are separate processes, so a counter
(:mod:`radassist.metrics`) only counts what its own process did.  The web app's /metrics therefore
also reports what the database knows at scrape time (studies, jobs and deliveries by state,
failures by error code), which is the same whichever process is scraped.  Label values are enum
values and stable error codes only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Job
from radassist.metrics import code_label
from radassist.read.workers import WORKER_STATES, workers_seen
from radassist.read.worklist import counts_by_state
from radassist.states import DeliveryChannel, DeliveryState, JobState

logger = logging.getLogger(__name__)

def job_counts_by_state(session: Session) -> dict[str, int]:
    """Jobs per state; every state present."""
    counts = dict.fromkeys((s.value for s in JobState), 0)
    for state, n in session.execute(select(Job.state, func.count()).group_by(Job.state)):
        counts[JobState(state).value] = int(n)
    return counts


def delivery_counts(session: Session) -> dict[tuple[str, str], int]:
    """Deliveries per (channel, state); every combination is present."""
    counts = {(c.value, s.value): 0 for c in DeliveryChannel for s in DeliveryState}
    stmt = select(Delivery.channel, Delivery.state, func.count()).group_by(Delivery.channel, Delivery.state)
    for channel, state, n in session.execute(stmt):
        counts[(DeliveryChannel(channel).value, DeliveryState(state).value)] = int(n)
    return counts


def failure_counts(session: Session) -> dict[tuple[str, str], int]:
    """Failed jobs and failed deliveries per (source, error code); ``unknown`` when no code was kept."""
    counts: Counter[tuple[str, str]] = Counter()
    jobs = select(Job.error_code, func.count()).where(Job.state == JobState.FAILED).group_by(Job.error_code)
    for code, n in session.execute(jobs):
        counts[("job", code or "unknown")] += int(n)
    deliveries = (
        select(Delivery.last_error_code, func.count())
        .where(Delivery.state == DeliveryState.FAILED)
        .group_by(Delivery.last_error_code)
    )
    for code, n in session.execute(deliveries):
        counts[("delivery", code or "unknown")] += int(n)
    return dict(counts)


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
                study_counts = counts_by_state(session)
                job_counts = job_counts_by_state(session)
                by_channel = delivery_counts(session)
                by_code = failure_counts(session)
        except SQLAlchemyError as exc:
            logger.warning("metrics: database unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        for state, n in study_counts.items():
            studies.add_metric([state], n)
        for state, n in job_counts.items():
            jobs.add_metric([state], n)
        for (channel, state), n in by_channel.items():
            deliveries.add_metric([channel, state], n)
        merged: dict[tuple[str, str], int] = {}
        for (source, code), n in by_code.items():
            key = (source, code_label(code))
            merged[key] = merged.get(key, 0) + n
        for (source, code), n in sorted(merged.items()):
            failures.add_metric([source, code], n)
        return [up, studies, jobs, deliveries, failures]


class WorkerCollector(Collector):
    """Workers by how they last reported in (``answering``, ``silent``, ``stopped``): alert on a silent one."""

    def __init__(self, sessions: sessionmaker[Session], lost_after_s: float) -> None:
        self._sessions = sessions
        self._lost_after_s = lost_after_s

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("radassist_workers", "Workers seen in the last day, by how they last reported in "
                                 "(silent: its jobs are handed back).", labels=["state"])

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        try:
            with self._sessions() as session:
                states = Counter(w.state for w in workers_seen(session, utcnow(), self._lost_after_s))
        except SQLAlchemyError as exc:
            logger.warning("metrics: database unavailable (%s)", type(exc).__name__)
            return []
        for state in WORKER_STATES:
            family.add_metric([state], states[state])
        return [family]


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
