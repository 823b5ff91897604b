"""Preparing and drafting work whose worker or message was lost, found by the sweep and handed back.

Handing back is safe because the prepare and draft tasks start with a compare-and-set and exit if
they lost.  A job lost while drafting goes back to ``prepared`` (its inputs are still kept); one
lost while preparing, back to ``queued``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from radassist.db.tables import Job, WorkerPresence
from radassist.db.transitions import set_job_state
from radassist.events import EventTag, record_event
from radassist.presence.silence import HOLDER_RESTARTED, HOLDER_SILENT, lost
from radassist.states import JobState

LOST_JOB_GRACE_S = 120.0
"""A job still queued (or prepared) this long after it was queued (or last claimed) while its queue
holds no message lost its message, e.g. one published while the broker was restarting."""
LOST_JOB_BATCH = 100
STUCK_SLACK_S = 60.0
"""A job preparing or drafting this long past the hard time limit has lost its worker."""

_BACK = {JobState.DRAFTING: JobState.PREPARED, JobState.PREPARING: JobState.QUEUED}
_HELD = select(Job.id, Job.study_id, Job.state, Job.held_by)
_HeldRow = Row[uuid.UUID, uuid.UUID, JobState, str | None]


def _requeue(session: Session, rows: Iterable[_HeldRow], reason: str, *, held: bool = False) -> list[uuid.UUID]:
    """Hand each row's job (its ``id``, ``study_id``, ``state``) back to the state before it, with its
    ``job:requeued`` event.  ``held``: only while still held by the row's ``held_by`` (a job taken
    over meanwhile stays with its new holder), whose hold is then cleared."""
    handed_back = []
    for row in rows:
        conditions, values = ((Job.held_by == row.held_by,), {"held_by": None}) if held else ((), {})
        if set_job_state(session, row.id, row.state, _BACK[row.state], *conditions, **values):
            record_event(session, EventTag.JOB_REQUEUED, study_id=row.study_id, job_id=row.id, reason=reason)
            handed_back.append(row.id)
    return handed_back


def _hand_back(session: Session, now: dt.datetime, job_limit_s: float, state: JobState) -> list[uuid.UUID]:
    cutoff = now - dt.timedelta(seconds=job_limit_s + STUCK_SLACK_S)
    rows = session.execute(_HELD.where(Job.state == state, Job.started_at < cutoff)).all()
    return _requeue(session, rows, "worker lost")


def hand_back_stuck(session: Session, now: dt.datetime, job_limit_s: float) -> list[uuid.UUID]:
    """Jobs drafting past the hard time limit (their worker died with its message) go back to
    prepared; the caller sends their draft task again."""
    return _hand_back(session, now, job_limit_s, JobState.DRAFTING)


def hand_back_stuck_preparing(session: Session, now: dt.datetime, job_limit_s: float) -> list[uuid.UUID]:
    """Jobs preparing past the hard time limit go back to queued; the caller sends their prepare task again."""
    return _hand_back(session, now, job_limit_s, JobState.PREPARING)


def hand_back_held_by(session: Session, holder: str, states: Collection[JobState] = tuple(_BACK),
                      ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The jobs a worker named ``holder`` was preparing or drafting (of ``states``: what its queues
    serve) when it died, handed back as it starts again under that name (it holds nothing yet); the
    drafts' and the preparations' ids.

    Without this they would wait for the sweep's cutoff (the time limit and a minute), or for a
    broker that redelivers the worker's unacknowledged messages.  The holder of a job taken over
    meanwhile is another worker, so its job stays; a pool child that outlived its parent loses the
    next compare-and-set on ``attempts`` (drafts) or ``started_at`` (preparations) and stores nothing.
    """
    def held_in(state: JobState) -> list[uuid.UUID]:
        if state not in states:
            return []
        rows = session.execute(_HELD.where(Job.held_by == holder, Job.state == state)).all()
        return _requeue(session, rows, HOLDER_RESTARTED, held=True)

    return held_in(JobState.DRAFTING), held_in(JobState.PREPARING)


def hand_back_from_silent(session: Session, now: dt.datetime, lost_after_s: float, heartbeat_s: float,
                          ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The jobs held by a worker that stopped, or that has not reported in for ``lost_after_s``
    (its machine gone, or killed and never started again under its name), handed back; the drafts'
    and the preparations' ids.

    A silence counts only while another worker has answered for a heartbeat without a break
    (:func:`radassist.presence.silence.lost`): after a database outage longer than
    ``lost_after_s`` every worker was silent, and their jobs stay with them.

    The time limit's cutoff (:func:`hand_back_stuck`) stays for jobs whose worker never reported
    in.  A worker that was only slow to report in loses its job's compare-and-set later and stores
    nothing: the cost of a false alarm is the work done twice, never a second draft sent.
    """
    rows = session.execute(
        _HELD.join(WorkerPresence, WorkerPresence.name == Job.held_by)
        .where(Job.state.in_(tuple(_BACK)), lost(now, lost_after_s, heartbeat_s))
    ).all()
    handed = set(_requeue(session, rows, HOLDER_SILENT, held=True))
    drafts = [r.id for r in rows if r.id in handed and r.state == JobState.DRAFTING]
    return drafts, [r.id for r in rows if r.id in handed and r.state == JobState.PREPARING]


def _waiting_without_message(session: Session, now: dt.datetime, state: JobState) -> list[uuid.UUID]:
    stale = now - dt.timedelta(seconds=LOST_JOB_GRACE_S)
    return list(session.scalars(
        select(Job.id)
        .where(Job.state == state, func.coalesce(Job.started_at, Job.created_at) < stale)
        .order_by(Job.created_at)
        .limit(LOST_JOB_BATCH)
    ).all())


def queued_without_message(session: Session, now: dt.datetime) -> list[uuid.UUID]:
    """Queued jobs old enough that their prepare message may be gone, oldest first.

    A job is committed ``queued`` before its message is published; when the publish fails (the
    broker is restarting) nothing else would ever queue it again.  The caller sends these again
    only when the cpu queue is empty, so a long but healthy backlog gets no copies.
    """
    return _waiting_without_message(session, now, JobState.QUEUED)


def prepared_without_message(session: Session, now: dt.datetime) -> list[uuid.UUID]:
    """Prepared jobs old enough that their draft message may be gone (sent again only when the gpu
    queue is empty), oldest first."""
    return _waiting_without_message(session, now, JobState.PREPARED)
