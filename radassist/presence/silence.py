"""When a worker counts as gone: read by the sweep's hand-back and by the system page alike, so it
imports nothing of the write side."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, exists, or_
from sqlalchemy.orm import aliased

from radassist.db.tables import WorkerPresence

HOLDER_RESTARTED = "its worker restarted"
"""Why a job or a delivery was handed back as its holder started again under its name."""
HOLDER_SILENT = "its worker stopped answering"
"""Why a job or a delivery was handed back once its holder was :func:`lost`."""


def gone(now: dt.datetime, lost_after_s: float) -> ColumnElement[bool]:
    """A worker that stopped, or has not reported in for ``lost_after_s``."""
    return or_(WorkerPresence.stopped_at.is_not(None),
               WorkerPresence.seen_at < now - dt.timedelta(seconds=lost_after_s))


def run_broken_after_s(heartbeat_s: float) -> float:
    """A report this long after the one before starts a new run (``answering_since``): at least one
    report in between failed.  Two heartbeats, so that one late report does not count."""
    return 2 * heartbeat_s


def database_answered(now: dt.datetime, heartbeat_s: float) -> ColumnElement[bool]:
    """Some worker, reporting now, has reported without a break for the last heartbeat or more.

    Then the database answered all that time, and a worker silent meanwhile is silent on its own
    account.  After a database outage every worker is silent for its length, and each reports in
    again within a second of its end (:mod:`workers.heartbeat`): until a heartbeat has passed since,
    no silence is trusted.  With no worker reporting at all, nothing is handed back either; no one
    would take it, and the jobs' time limit stays the backstop.
    """
    other = aliased(WorkerPresence)
    return exists().where(
        other.stopped_at.is_(None),
        other.seen_at >= now - dt.timedelta(seconds=run_broken_after_s(heartbeat_s)),
        other.answering_since <= now - dt.timedelta(seconds=heartbeat_s),
    )


def lost(now: dt.datetime, lost_after_s: float, heartbeat_s: float) -> ColumnElement[bool]:
    """A worker whose jobs the sweep hands back: it reported its stop, or it is silent while the
    database answered (:func:`database_answered`)."""
    return or_(WorkerPresence.stopped_at.is_not(None),
               and_(gone(now, lost_after_s), database_answered(now, heartbeat_s)))
