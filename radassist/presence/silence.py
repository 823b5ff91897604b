"""When a worker counts as gone: read by the sweep's hand-back and by the system page alike, so it
imports nothing of the write side."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, or_

from radassist.db.tables import WorkerPresence


def gone(now: dt.datetime, lost_after_s: float) -> ColumnElement[bool]:
    """A worker that stopped, or has not reported in for ``lost_after_s``."""
    return or_(WorkerPresence.stopped_at.is_not(None),
               WorkerPresence.seen_at < now - dt.timedelta(seconds=lost_after_s))
