"""Measuring (``cpu`` queue): wires the measure task to :mod:`radassist.measuring`.

The comparison (:mod:`radassist.quality.pair`) loads spaCy, and spaCy loads torch, so it is
imported inside the task: every worker imports this module at start, and the io worker must stay
free of model code.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from celery import shared_task
from sqlalchemy.exc import IntegrityError

from radassist.broker import MEASURE_TASK
from radassist.db.base import utcnow
from radassist.measuring.record import measure_draft
from workers.base import RadAssistTask, retry_while_db_down

if TYPE_CHECKING:
    from radassist.quality.metrics import PairMetrics

logger = logging.getLogger(__name__)


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
