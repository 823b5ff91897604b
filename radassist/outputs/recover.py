"""Drafted jobs whose build message was lost, found by the sweep and queued again.

The draft task queues the build only after the draft's commit; a publish that fails then (the
broker restarting, the worker killed) would leave the job ``drafted`` for ever.  Queuing it again
is safe: the build starts with a compare-and-set and exits if it lost.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Job
from radassist.db.transitions import stat_waiting
from radassist.states import JobState

LOST_BUILD_GRACE_S = 60.0
"""A job drafted this long ago, while the io queue holds no message, lost its build message."""
LOST_BUILD_BATCH = 100


def drafted_without_message(session: Session, now: dt.datetime) -> list[uuid.UUID]:
    """Drafted jobs old enough that their build message may be gone, oldest first.

    The caller sends these again only when the io queue is empty, so a backlog gets no copies.
    """
    stale = now - dt.timedelta(seconds=LOST_BUILD_GRACE_S)
    return list(session.scalars(
        select(Job.id)
        .where(Job.state == JobState.DRAFTED, Job.drafted_at < stale)
        .order_by(Job.drafted_at)
        .limit(LOST_BUILD_BATCH)
    ).all())


def stat_drafted(session: Session, other_than: uuid.UUID) -> list[uuid.UUID]:
    """STAT jobs drafted and waiting for their build, oldest first (see
    :func:`radassist.db.transitions.stat_waiting`)."""
    return stat_waiting(session, JobState.DRAFTED, Job.drafted_at, other_than)
