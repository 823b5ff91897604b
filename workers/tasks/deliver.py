"""Delivery (``io`` queue): wires the delivery task to :mod:`radassist.delivery`.

One attempt at one outbox item: claim it, send it, record the outcome; a retry is queued (with its
backoff) only after the outcome's commit.
"""

from __future__ import annotations

import functools
import uuid

from celery import shared_task

from radassist.broker import DELIVER_TASK, send_job_task
from radassist.db.base import utcnow
from radassist.db.handles import handle_of_job
from radassist.db.tables import Delivery, Job
from radassist.delivery.attempt import claim_delivery, send
from radassist.delivery.in_order import Deferred
from radassist.delivery.outcome import record_outcome
from radassist.delivery.recover import stat_due
from radassist.errors import RadAssistError
from radassist.logging import log_context
from workers.base import RadAssistTask, retry_while_db_down
from workers.enqueue import after_commit


@shared_task(base=RadAssistTask, bind=True, name=DELIVER_TASK, ignore_result=True)
def deliver(self: RadAssistTask, delivery_id: str) -> None:
    own = uuid.UUID(delivery_id)
    with self.session() as session:
        stat_first = stat_due(session, utcnow(), own)  # STAT jobs' deliveries go first, whatever woke us
    for other in [*stat_first, own]:
        _attempt(self, other)


def _attempt(self: RadAssistTask, delivery_id: uuid.UUID) -> None:
    with self.session() as session:
        claimed = claim_delivery(session, delivery_id, utcnow(), self.request.hostname)
        handle = handle_of_job(session, claimed[1].id) if isinstance(claimed, tuple) else "-"
    if isinstance(claimed, Deferred):  # an older draft's ORU is still on its way to the RIS
        send_job_task(self.app, self.settings.broker_url, DELIVER_TASK, delivery_id, claimed.priority,
                      countdown=claimed.seconds)
        return
    if claimed is None:
        return
    delivery, job = claimed
    with log_context(job_id=job.id, study=handle):
        _record(self, delivery, job, send(delivery, self.settings, self.outputs))


@retry_while_db_down("recording the delivery outcome")
def _record(task: RadAssistTask, delivery: Delivery, job: Job, error: RadAssistError | None) -> None:
    with task.session() as session:
        retry_in = record_outcome(session, delivery, job, error, task.settings.delivery, utcnow())
        if retry_in is not None:
            after_commit(session, functools.partial(send_job_task, task.app, task.settings.broker_url, DELIVER_TASK,
                                                    delivery.id, job.priority, countdown=retry_in))
        session.commit()
