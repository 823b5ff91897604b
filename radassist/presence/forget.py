"""Workers gone for a week are forgotten: their rows leave ``worker_presence``.

Each worker name keeps one row, so the table grows only with names no longer used (a machine
retired, a worker renamed).  The system page shows a day of them; a week leaves the last reports of a
weekend's outage readable.  A row whose worker still holds a job, or a delivery it was sending,
stays: its hand-back (``hand_back_from_silent`` of :mod:`radassist.drafting.recover` and
:mod:`radassist.delivery.recover`) needs it.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, exists
from sqlalchemy.orm import Session

from radassist.db.tables import Delivery, Job, WorkerPresence
from radassist.states import DeliveryState, JobState

logger = logging.getLogger(__name__)

FORGET_AFTER = dt.timedelta(days=7)
_HOLDING = (JobState.PREPARING, JobState.DRAFTING)


def forget_gone_workers(session: Session, now: dt.datetime) -> int:
    """Remove the rows of workers that last reported more than :data:`FORGET_AFTER` ago and hold no
    job or delivery; how many.  The caller commits."""
    result = session.execute(
        delete(WorkerPresence)
        .where(WorkerPresence.seen_at < now - FORGET_AFTER,
               ~exists().where(Job.held_by == WorkerPresence.name, Job.state.in_(_HOLDING)),
               ~exists().where(Delivery.held_by == WorkerPresence.name, Delivery.state == DeliveryState.SENDING))
        .execution_options(synchronize_session=False)
    )
    removed = int(getattr(result, "rowcount", 0) or 0)
    if removed:
        logger.info("forgot %d workers that have not reported in for %d days", removed, FORGET_AFTER.days)
    return removed


__all__ = ["FORGET_AFTER", "forget_gone_workers"]
