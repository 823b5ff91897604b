"""The workers as they last reported in, for the system page on every broker (the embedded one
cannot be asked), with what each holds now."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from radassist.db.tables import Job, WorkerPresence
from radassist.presence.silence import gone
from radassist.read.rows import WorkerSeenRow
from radassist.states import JobState

WORKER_STATES = ("answering", "silent", "stopped")
SHOWN_FOR = dt.timedelta(days=1)
"""A worker stopped or silent longer than this is left off the page (its row stays)."""


def workers_seen(session: Session, now: dt.datetime, lost_after_s: float) -> list[WorkerSeenRow]:
    holding = (
        select(Job.held_by, func.count().label("n"))
        .where(Job.state.in_((JobState.PREPARING, JobState.DRAFTING)))
        .group_by(Job.held_by)
        .subquery()
    )
    rows = session.execute(
        select(WorkerPresence, func.coalesce(holding.c.n, 0), gone(now, lost_after_s))
        .outerjoin(holding, holding.c.held_by == WorkerPresence.name)
        .where(or_(WorkerPresence.stopped_at.is_(None), WorkerPresence.seen_at >= now - SHOWN_FOR))
        .order_by(WorkerPresence.name)
    ).all()
    return [
        WorkerSeenRow(
            name=w.name, queues=tuple(q for q in w.queues.split(",") if q), started_at=w.started_at,
            seen_at=w.seen_at, stopped_at=w.stopped_at, holding=n,
            state="stopped" if w.stopped_at else "silent" if is_gone else "answering",
        )
        for w, n, is_gone in rows
    ]
