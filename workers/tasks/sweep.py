"""The scheduler's periodic sweep: wires the stages' time-driven work to the broker.

Completing quiet studies is time-driven: the listener's timer completes each study when its quiet
time ends (:mod:`dicom_node.completion_timer`), and this sweep completes whatever no timer did (a
listener restarted, required series, force-complete) (:mod:`radassist.completion`); a new job goes to
its priors first when sources are configured, else to the cpu queue to be prepared, and each job's
message carries its priority.  Then each stage hands back its lost work (:mod:`radassist.prefetch.recover`,
:mod:`radassist.drafting.recover`, :mod:`radassist.outputs.recover`,
:mod:`radassist.delivery.recover`); that is safe because every task starts with a compare-and-set
and exits if it lost.  Messages are sent only after the commit.
"""

from __future__ import annotations

import logging
import uuid
from functools import partial

from celery import shared_task

from radassist.broker import (
    BUILD_TASK,
    CPU_QUEUE,
    DELIVER_TASK,
    DRAFT_TASK,
    GPU_QUEUE,
    IO_QUEUE,
    PREPARE_TASK,
    PRIORS_TASK,
    SWEEP_TASK,
    queue_depths,
    send_job_tasks,
)
from radassist.completion.claim import claim_all
from radassist.db.base import utcnow
from radassist.db.handles import priorities_of
from radassist.delivery import recover as delivery_recover
from radassist.drafting import recover as drafting_recover
from radassist.outputs import recover as outputs_recover
from radassist.prefetch import recover as prefetch_recover
from radassist.prefetch.start import fetches_priors
from workers.base import RadAssistTask
from workers.enqueue import after_commit

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name=SWEEP_TASK, acks_late=False, ignore_result=True)
def sweep(self: RadAssistTask) -> None:
    settings = self.settings
    now = utcnow()
    with self.session() as session:
        # Each pipeline (called AE title) with its own quiet time, rules and model; priority order.
        new_jobs = claim_all(session, settings, now=now)
        searches = prefetch_recover.hand_back_lost(session, settings, now)
        limit = settings.queue.job_time_limit_seconds
        drafts = drafting_recover.hand_back_stuck(session, now, limit)
        preparing = drafting_recover.hand_back_stuck_preparing(session, now, limit)
        # A worker silent for minutes (its machine gone) has lost its jobs long before the time limit.
        silent_drafts, silent_preparing = drafting_recover.hand_back_from_silent(
            session, now, settings.queue.worker_lost_after_seconds, settings.queue.worker_heartbeat_seconds)
        drafts += silent_drafts
        preparing += silent_preparing
        # New jobs start with their priors when sources are configured (radassist.prefetch.start),
        # else with the preparation of their inputs (cpu queue).
        if fetches_priors(settings):
            searches = new_jobs + searches
        else:
            preparing = new_jobs + preparing
        deliveries = delivery_recover.hand_back_stuck(session, now, settings.hl7.ack_timeout_seconds)
        deliveries += delivery_recover.hand_back_from_silent(
            session, now, settings.queue.worker_lost_after_seconds, settings.queue.worker_heartbeat_seconds)
        closed = delivery_recover.close_settled_jobs(session, now)
        priorities = priorities_of(session, searches + preparing + drafts, deliveries)
        for task, ids in ((PRIORS_TASK, searches), (PREPARE_TASK, preparing), (DRAFT_TASK, drafts),
                          (DELIVER_TASK, deliveries)):
            after_commit(session, partial(send_job_tasks, self.app, settings.broker_url, task, ids, priorities))
        session.commit()
    if new_jobs:
        logger.info("%d jobs queued", len(new_jobs))
    if closed:
        logger.warning("%d delivering jobs had every delivery settled but were still open; closed", len(closed))

    with self.session() as session:
        due = delivery_recover.overdue(session, now)
        lost_prepares = _if_queue_empty(self, CPU_QUEUE, drafting_recover.queued_without_message(session, now))
        lost_drafts = _if_queue_empty(self, GPU_QUEUE, drafting_recover.prepared_without_message(session, now))
        lost_builds = _if_queue_empty(self, IO_QUEUE, outputs_recover.drafted_without_message(session, now))
        priorities = priorities_of(session, lost_prepares + lost_drafts + lost_builds, due)
    for task, ids in ((DELIVER_TASK, due), (PREPARE_TASK, lost_prepares), (DRAFT_TASK, lost_drafts),
                      (BUILD_TASK, lost_builds)):
        send_job_tasks(self.app, settings.broker_url, task, ids, priorities)
    if lost_prepares or lost_drafts or lost_builds:
        logger.warning("%d queued, %d prepared and %d drafted jobs had no message in their queue; queued again",
                       len(lost_prepares), len(lost_drafts), len(lost_builds))


def _if_queue_empty(task: RadAssistTask, queue: str, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """``ids`` when ``queue`` holds no message; none when it does, or when the broker does not answer."""
    if not ids or _queue_depth(task, queue) != 0:
        return []
    return ids


def _queue_depth(task: RadAssistTask, queue: str) -> int | None:
    """Messages waiting in ``queue``; None when the broker does not answer (then nothing is re-sent)."""
    try:
        return queue_depths(task.app, [queue], timeout=5.0)[queue]
    except Exception as exc:  # noqa: BLE001 - no answer: do not re-send
        logger.warning("could not read the depth of queue %s (%s)", queue, type(exc).__name__)
        return None
