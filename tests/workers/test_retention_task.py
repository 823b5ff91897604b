"""The scheduler's retention run also forgets the workers gone for a week."""

from __future__ import annotations

import datetime as dt

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.base import utcnow
from radassist.db.tables import WorkerPresence
from radassist.presence.forget import FORGET_AFTER
from radassist.presence.report import report_start
from tests.workers.test_tasks import app, session  # noqa: F401 - fixtures


def test_the_retention_run_forgets_workers_gone_for_a_week(app: Celery, session: Session) -> None:  # noqa: F811
    from workers.tasks.retention import retention

    report_start(session, "retired@old-host", ["gpu"], 1, utcnow() - FORGET_AFTER - dt.timedelta(hours=1))
    report_start(session, "gpu-0@host", ["gpu"], 2, utcnow())
    session.commit()
    retention.apply().get()
    session.expire_all()
    assert session.scalars(select(WorkerPresence.name)).all() == ["gpu-0@host"]
