"""Claim prepared jobs for one drafting run: the job of the message, and a batch of others like it.

A job reaches the drafting worker ``prepared``: its inputs are in the prepared store
(:mod:`radassist.drafting.preparing`, on the cpu queue).  A worker that picks up a job also claims
up to ``[model] batch_size - 1`` other prepared jobs of the same model (compare-and-set each, STAT
first, then oldest first) and drafts them all in one ``generate``; their own messages then find them
no longer prepared and do nothing.  STAT jobs waiting are claimed even ahead of a routine message's
own job, and the run's next batches (:func:`claim_next_batch`) take STAT jobs first too.

A worker killed mid-draft (SIGKILL, out of memory) leaves its jobs ``drafting``.  With ``acks_late``
and ``task_reject_on_worker_lost`` the broker hands its message to another worker, marked
*redelivered*; that worker takes the job over, with the batch it was drafted in (same
``started_at``).  Every claim increments ``attempts``, and every write at the end of a draft
requires the ``attempts`` it claimed with (:mod:`radassist.drafting.record`), so a holder that was
presumed dead but was only slow writes nothing: no second SR or ORU.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.tables import Instance, Job, Study
from radassist.db.transitions import set_job_state
from radassist.events import EventTag, record_event
from radassist.identifiers import study_handle
from radassist.states import JobPriority, JobState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedJob:
    """One job taken for this run: the claim's fence (``attempts``) and where its study is stored."""

    job_id: uuid.UUID
    study_id: uuid.UUID
    attempts: int
    model_name: str
    """The model the job's pipeline chose when the study completed."""
    paths: tuple[Path, ...]
    """The study's stored instances, in the order they were received (read by the prepare stage
    only: the drafting worker reads the prepared store, never these files)."""
    accession_hash: str | None
    study_handle: str = "-"
    """The study's handle in log lines (:func:`radassist.identifiers.study_handle`)."""
    shadow: bool = False
    """A shadow model's job: its draft is stored and measured, and no output is built from it."""
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    """When this claim was made: the prepare stage's fence, and the start of the drafting time."""
    priority: JobPriority = JobPriority.ROUTINE
    """Its outputs are built and delivered with this priority (STAT first)."""


def _claim_prepared(session: Session, job_id: uuid.UUID, now: dt.datetime) -> bool:
    return set_job_state(session, job_id, JobState.PREPARED, JobState.DRAFTING, started_at=now,
                         attempts=Job.attempts + 1)


def take_over(session: Session, job_id: uuid.UUID, now: dt.datetime) -> list[uuid.UUID]:
    """Claim a dead worker's batch: the job, and the jobs it was claimed with (same ``started_at``).

    Each goes drafting -> prepared -> drafting in this transaction (both allowed transitions), with
    ``attempts`` incremented: that is the fence against the previous holder.
    """
    row = session.execute(
        select(Job.state, Job.started_at, Job.model_name, Job.study_id).where(Job.id == job_id)
    ).one_or_none()
    if row is None or row.state is not JobState.DRAFTING or row.started_at is None:
        return []
    batch = session.execute(
        select(Job.id, Job.study_id).where(Job.state == JobState.DRAFTING, Job.started_at == row.started_at,
                                           Job.model_name == row.model_name, Job.id != job_id)
    ).all()
    taken = []
    for other, study_id in [(job_id, row.study_id), *batch]:
        if set_job_state(session, other, JobState.DRAFTING, JobState.PREPARED) and _claim_prepared(session, other, now):
            record_event(session, EventTag.JOB_REQUEUED, study_id=study_id, job_id=other,
                         reason="worker lost; taken over")
            taken.append(other)
    if taken:
        logger.warning("took over %d job(s) from a worker that died mid-draft", len(taken))
    return taken


STAT_FIRST = case((Job.priority == JobPriority.STAT, 0), else_=1)
"""Sorts STAT jobs before routine ones."""


def _claim_prepared_of(session: Session, model_name: str, room: int, now: dt.datetime, *,
                       taken: Sequence[uuid.UUID] = (), handed_back: bool = True) -> list[uuid.UUID]:
    """Up to ``room`` prepared jobs of ``model_name`` besides ``taken``, STAT first, then oldest
    first, each claimed.  ``handed_back=False`` leaves out a job handed back after a transient
    failure (it carries the error): it waits for its own, delayed, message."""
    if room <= 0:
        return []
    query = select(Job.id).where(Job.state == JobState.PREPARED, Job.model_name == model_name)
    if taken:
        query = query.where(Job.id.not_in(list(taken)))
    if not handed_back:
        query = query.where(Job.error_code.is_(None))
    candidates = session.scalars(query.order_by(STAT_FIRST, Job.created_at).limit(room)).all()
    return [other for other in candidates if _claim_prepared(session, other, now)]


def _stat_ahead(session: Session, job_id: uuid.UUID, room: int, now: dt.datetime) -> list[uuid.UUID]:
    """STAT jobs of the same model claimed ahead of ``job_id`` when it is a prepared routine job: the
    worker takes them whatever message woke it (the embedded broker has no message priorities)."""
    own = session.execute(select(Job.state, Job.priority, Job.model_name).where(Job.id == job_id)).one_or_none()
    if own is None or own.state is not JobState.PREPARED or own.priority is JobPriority.STAT:
        return []
    waiting = session.scalars(
        select(Job.id)
        .where(Job.state == JobState.PREPARED, Job.priority == JobPriority.STAT, Job.model_name == own.model_name)
        .order_by(Job.created_at)
        .limit(room)
    ).all()
    return [other for other in waiting if _claim_prepared(session, other, now)]


def is_prepared(session: Session, job_id: uuid.UUID) -> bool:
    """A read, no write: whether the job still waits for the model (a message whose job was drafted
    as another's batch mate ends here, without taking the database's write lock)."""
    return session.scalar(select(Job.state).where(Job.id == job_id)) is JobState.PREPARED


def claim_next_batch(session: Session, model_name: str, settings: Settings,
                     started_at: dt.datetime) -> list[ClaimedJob]:
    """Claim prepared jobs of ``model_name``, STAT first then oldest, up to a batch, as part of a run
    that started at ``started_at`` (their ``started_at`` too: a takeover after the run's worker died
    takes them all over with the run's first batch); the caller commits.  Empty when none is prepared.  A job handed
    back after a transient failure (it carries the error) is left to its own, delayed, message."""
    ids = _claim_prepared_of(session, model_name, settings.model.batch_size, started_at, handed_back=False)
    claimed = read_claimed(session, ids, settings)
    for c in claimed:
        record_event(session, EventTag.DRAFT_STARTED, study_id=c.study_id, job_id=c.job_id, batch=len(ids))
    return claimed


def read_claimed(session: Session, ids: list[uuid.UUID], settings: Settings, *,
                 paths: bool = False) -> list[ClaimedJob]:
    """The claimed jobs as a run needs them, in the order of ``ids``, read in one query (with the
    study's stored paths only when ``paths``: the drafting worker never reads the files)."""
    rows = {r.id: r for r in session.execute(
        select(Job.id, Job.study_id, Job.attempts, Job.model_name, Job.shadow, Job.created_at, Job.started_at,
               Job.priority, Study.accession_number_hash, Study.study_instance_uid)
        .join(Study, Study.id == Job.study_id).where(Job.id.in_(ids))
    )}
    files: dict[uuid.UUID, list[str]] = {}
    if paths:
        for study_id, path in session.execute(
            select(Instance.study_id, Instance.path)
            .where(Instance.study_id.in_({r.study_id for r in rows.values()})).order_by(Instance.received_at)
        ):
            files.setdefault(study_id, []).append(path)
    return [
        ClaimedJob(job_id=r.id, study_id=r.study_id, attempts=r.attempts, model_name=r.model_name,
                   paths=tuple(settings.storage.instances_dir / p for p in files.get(r.study_id, ())),
                   accession_hash=r.accession_number_hash, study_handle=study_handle(r.study_instance_uid),
                   shadow=r.shadow, created_at=r.created_at, started_at=r.started_at, priority=r.priority)
        for r in (rows[i] for i in ids if i in rows)
    ]


def claim_batch(
    session: Session, job_id: uuid.UUID, settings: Settings, now: dt.datetime, *, takeover: bool = False
) -> list[ClaimedJob]:
    """Claim ``job_id`` (or take it over, after a redelivery) and fill the batch; the caller commits.

    STAT jobs waiting go first: a routine job's batch starts with them, and when they fill it the
    routine job stays prepared (:func:`job_left_waiting` tells the caller to claim again, with the
    run's ``started_at`` as ``now``).  Empty when the job is not prepared any more (or, with
    ``takeover``, not drafting either).
    """
    size = settings.model.batch_size
    ids = _stat_ahead(session, job_id, size, now)
    if len(ids) < size:
        if _claim_prepared(session, job_id, now):
            ids.append(job_id)
        elif takeover:
            ids += take_over(session, job_id, now)
    if not ids:
        return []
    model_name = session.scalar(select(Job.model_name).where(Job.id == ids[0]))
    assert model_name is not None
    ids += _claim_prepared_of(session, model_name, size - len(ids), now, taken=ids)
    claimed = read_claimed(session, ids, settings)
    for c in claimed:
        record_event(session, EventTag.DRAFT_STARTED, study_id=c.study_id, job_id=c.job_id, batch=len(ids))
    return claimed


def job_left_waiting(claimed: Sequence[ClaimedJob], job_id: uuid.UUID) -> bool:
    """True when a batch was claimed without ``job_id`` (STAT jobs filled it): claim again for it."""
    return bool(claimed) and all(c.job_id != job_id for c in claimed)


def record_holder(session: Session, job_ids: Sequence[uuid.UUID], holder: str | None) -> None:
    """Name the worker (its Celery node name) that just claimed ``job_ids``, in the claim's transaction:
    that worker starting again hands them back at once (:func:`radassist.drafting.recover.hand_back_held_by`)."""
    if job_ids and holder:
        session.execute(update(Job).where(Job.id.in_(list(job_ids))).values(held_by=holder))

