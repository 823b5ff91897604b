"""Prometheus metrics each process counts for itself: instances received, jobs finished, stage
durations, delivery attempts.

The listener, the workers and the web app are separate processes, so a counter only counts what its
own process did; what the database knows is read at scrape time by :mod:`radassist.read.metrics`.

Label values are enum values and stable error codes only: never a UID, an AE title, a destination
host or anything a sender chose.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Histogram

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
