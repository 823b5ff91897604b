"""Measuring: wires :mod:`radassist.measuring` to the broker.

``radassist.quality_sweep`` (io queue, every ``[quality] measure_interval_seconds``) finds the
drafts whose study has a final report they were not measured against and, while the ``cpu`` queue
is empty (so a backlog is never queued twice), sends each to ``radassist.measure`` on that queue.
Finding them reads the whole history of drafts and reports, so it runs at its own, slower pace
than the pipeline's sweep.  The comparison (:mod:`radassist.quality.pair`) loads spaCy, and spaCy
loads torch, so it is imported inside the measure task: every worker imports this module at
start, and the io worker must stay free of model code.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from celery import shared_task
from sqlalchemy.exc import IntegrityError

from radassist.broker import CPU_QUEUE, MEASURE_TASK, QUALITY_SWEEP_TASK, queue_depths
from radassist.db.base import utcnow
from radassist.measuring.find import drafts_to_measure
from radassist.measuring.record import measure_draft
from workers.base import RadAssistTask, retry_while_db_down

if TYPE_CHECKING:
    from radassist.quality.metrics import PairMetrics

logger = logging.getLogger(__name__)


@shared_task(base=RadAssistTask, bind=True, name=QUALITY_SWEEP_TASK, acks_late=False, ignore_result=True)
def quality_sweep(self: RadAssistTask) -> None:
    try:
        waiting = queue_depths(self.app, [CPU_QUEUE], timeout=5.0)[CPU_QUEUE]
    except Exception as exc:  # noqa: BLE001 - no answer: send nothing this time
        logger.warning("could not read the depth of queue %s (%s)", CPU_QUEUE, type(exc).__name__)
        return
    if waiting:
        return
    with self.session() as session:
        draft_ids = drafts_to_measure(session, self.settings.quality.measure_batch)
    for draft_id in draft_ids:
        measure.apply_async((str(draft_id),))
    if draft_ids:
        logger.info("%d drafts sent to be measured against their final reports", len(draft_ids))


@shared_task(base=RadAssistTask, bind=True, name=MEASURE_TASK, ignore_result=True)
def measure(self: RadAssistTask, draft_id: str) -> None:
    _measure(self, uuid.UUID(draft_id))


@retry_while_db_down("measuring the draft")
def _measure(task: RadAssistTask, draft_id: uuid.UUID) -> None:
    from radassist.quality.pair import compare_pair

    settings = task.settings.quality

    def compare(draft: str, final: str, profile: str) -> PairMetrics:
        return compare_pair(draft, final, profile, settings)

    with task.session() as session:
        try:
            measured = measure_draft(session, draft_id, settings, compare, utcnow())
            session.commit()
        except IntegrityError:
            session.rollback()  # another worker stored the same pair first
            measured = None
    if measured is None:
        logger.info("draft already measured against its newest final report; nothing to do")
    elif measured.error_code:
        logger.warning("draft could not be measured (%s)", measured.error_code)
    else:
        logger.info("draft measured against its final report")
