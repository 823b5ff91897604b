"""The sweep queues again a job whose message was lost (published while the broker was down), but
only when the drafting queue is empty, so a long healthy backlog does not get copies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.tables import Job
from radassist.states import JobState
from tests.workers.test_tasks import add_job, app, session  # noqa: F401 - fixtures


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    from workers.tasks.draft import draft_study

    calls: list[str] = []
    monkeypatch.setattr(draft_study, "apply_async", lambda args, **_: calls.append(args[0]))
    yield calls


def _age(session: Session, job: Job, seconds: float) -> None:  # noqa: F811
    session.execute(update(Job).where(Job.id == job.id).values(created_at=utcnow() - dt.timedelta(seconds=seconds)))
    session.commit()


def test_a_stale_queued_job_with_an_empty_queue_is_queued_again(
    app: Celery, session: Session, sent: list[str], migrated_settings: Settings  # noqa: F811
) -> None:
    from radassist.drafting.recover import LOST_JOB_GRACE_S
    from workers.tasks.sweep import sweep

    stale, _fresh = add_job(session, JobState.QUEUED), add_job(session, JobState.QUEUED)
    _age(session, stale, LOST_JOB_GRACE_S + 5)
    sweep.apply().get()
    assert sent == [str(stale.id)]


def test_nothing_is_sent_again_while_the_queue_holds_messages(
    app: Celery, session: Session, sent: list[str], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from radassist.drafting.recover import LOST_JOB_GRACE_S
    from workers.tasks import sweep as sweep_module

    stale = add_job(session, JobState.QUEUED)
    _age(session, stale, LOST_JOB_GRACE_S + 5)
    monkeypatch.setattr(sweep_module, "_queue_depth", lambda task, queue: 3)
    sweep_module.sweep.apply().get()
    assert sent == []
    monkeypatch.setattr(sweep_module, "_queue_depth", lambda task, queue: None)  # broker unreachable
    sweep_module.sweep.apply().get()
    assert sent == []
