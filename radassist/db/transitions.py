"""Compare-and-set state changes: ``UPDATE ... WHERE state IN (:expected)``.

A task that finds no row in the expected state does nothing: that is what makes re-delivered and
duplicated Celery messages harmless.  The event row is written in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from radassist.db.tables import Delivery, Job
from radassist.states import DeliveryState, JobPriority, JobState, can_transition


def _expected(states: JobState | DeliveryState | Iterable[Any]) -> list[Any]:
    return [states] if isinstance(states, (JobState, DeliveryState)) else list(states)


def set_job_state(
    session: Session,
    job_id: uuid.UUID,
    expected: JobState | Iterable[JobState],
    target: JobState,
    *conditions: Any,
    **values: Any,
) -> bool:
    """Move a job from one of ``expected`` to ``target`` (plus optional extra WHERE conditions)."""
    states = _expected(expected)
    for state in states:
        if not can_transition(state, target):
            raise ValueError(f"job transition {state} -> {target} is not allowed")
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.state.in_(states), *conditions).values(state=target, **values)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def set_delivery_state(
    session: Session,
    delivery_id: uuid.UUID,
    expected: DeliveryState | Iterable[DeliveryState],
    target: DeliveryState,
    *conditions: Any,
    **values: Any,
) -> bool:
    """Move a delivery from one of ``expected`` to ``target`` (plus optional extra WHERE conditions)."""
    states = _expected(expected)
    for state in states:
        if not can_transition(state, target):
            raise ValueError(f"delivery transition {state} -> {target} is not allowed")
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state.in_(states), *conditions)
        .values(state=target, **values)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


STAT_AHEAD = 4
"""Most STAT jobs a stage's task serves ahead of its own job."""


def stat_waiting(session: Session, state: JobState, oldest_first_by: Any, other_than: uuid.UUID) -> list[uuid.UUID]:
    """STAT jobs waiting in ``state``, oldest first by ``oldest_first_by``: a stage's task serves them
    before its own job, whatever message woke it (the embedded broker has no message priorities)."""
    return list(session.scalars(
        select(Job.id)
        .where(Job.state == state, Job.priority == JobPriority.STAT, Job.id != other_than)
        .order_by(oldest_first_by)
        .limit(STAT_AHEAD)
    ).all())
