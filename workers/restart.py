"""A worker that starts again hands back what it held when it died.

A worker killed with its jobs (out of memory, a crash, a machine reboot) leaves them ``preparing``
or ``drafting`` under its node name (``jobs.held_by``).  Started again under the same name (the
``--name`` of ``radassist worker``, or the same unit on the same host), it holds nothing yet, so
every job still held under that name lost its holder: each goes back to ``queued`` or
``prepared`` (a delivery an io worker was sending, to ``pending``: ``deliveries.held_by``) and its
message is sent again, at start-up, instead of after the sweep's cutoff (the time limit and a
minute; three ACK timeouts for a delivery) or a broker's redelivery (Redis: its visibility
timeout, an hour).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from celery import Celery

from radassist.broker import (
    CPU_QUEUE,
    DELIVER_TASK,
    DRAFT_TASK,
    GPU_QUEUE,
    IO_QUEUE,
    PREPARE_TASK,
    send_job_tasks,
)
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.handles import priorities_of
from radassist.delivery import recover as delivery_recover
from radassist.drafting.recover import hand_back_held_by
from radassist.states import JobState

logger = logging.getLogger(__name__)


_HELD_ON = {GPU_QUEUE: JobState.DRAFTING, CPU_QUEUE: JobState.PREPARING}
"""What a worker consuming each queue may have held: two workers of one host that share a name by
mistake (the default ``--name``) but serve different queues never hand back each other's jobs."""


def hand_back_on_start(app: Celery, hostname: str, queues: Iterable[str]) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Hand back the jobs held under ``hostname`` by a worker of ``queues`` and send their messages;
    the drafts' and the preparations' ids.  An io worker also hands back the deliveries it was sending."""
    queues = list(queues)
    states = [_HELD_ON[q] for q in queues if q in _HELD_ON]
    serves_io = IO_QUEUE in queues
    if not states and not serves_io:
        return [], []
    settings: Settings = app.radassist_settings
    sessions = make_sessionmaker(settings)
    try:
        with sessions() as session:
            drafts, preparing = hand_back_held_by(session, hostname, states)
            deliveries = delivery_recover.hand_back_held_by(session, hostname, utcnow()) if serves_io else []
            priorities = priorities_of(session, drafts + preparing, deliveries)
            session.commit()
    finally:
        sessions.kw["bind"].dispose()
    for task, ids in ((PREPARE_TASK, preparing), (DRAFT_TASK, drafts), (DELIVER_TASK, deliveries)):
        send_job_tasks(app, settings.broker_url, task, ids, priorities)
    if drafts or preparing or deliveries:
        logger.warning("this worker started again: %d drafts, %d preparations and %d deliveries it held when "
                       "it stopped are handed back", len(drafts), len(preparing), len(deliveries))
    return drafts, preparing


__all__ = ["hand_back_on_start"]
