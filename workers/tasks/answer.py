"""Questions to the model (``gpu`` queue): wires the answer task to :mod:`radassist.conversation.serve`.

The answer task answers its question and every other one waiting.  A drafting run calls
:func:`serve_questions_first` before it claims its batch, so questions go before routine drafts
whatever order the broker delivers the messages in.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task

from radassist.broker import ANSWER_TASK
from radassist.conversation.serve import answer_waiting
from workers.base import RadAssistTask

logger = logging.getLogger(__name__)

DRAFT_SLACK_S = 60.0
"""Time a drafting run keeps, beyond the model's generation time limit, for preparing and storing its batch."""


@shared_task(base=RadAssistTask, bind=True, name=ANSWER_TASK, ignore_result=True)
def answer_question(self: RadAssistTask, turn_id: str) -> None:
    answered = answer_waiting(self.session, self.settings)
    if not answered:
        logger.info("question %s was answered or given up already; nothing to do", turn_id)


def serve_questions_first(task: RadAssistTask) -> None:
    """Answer the questions waiting before a drafting run claims its batch.

    Only as long as the run keeps enough of its time limit to draft afterwards; a question left then
    is answered by its own message or the next run.  A failure here never stops the draft.
    """
    settings = task.settings
    budget = settings.queue.job_time_limit_seconds * 0.9 - settings.model.generation_time_limit_s - DRAFT_SLACK_S
    if budget <= 0:
        return
    deadline = time.monotonic() + budget
    try:
        answer_waiting(task.session, settings, stop=lambda: time.monotonic() >= deadline)
    except Exception as exc:  # noqa: BLE001 -- e.g. the database restarting: drafting goes on, retried by it
        logger.warning("questions waiting could not be answered before the draft (%s)", type(exc).__name__)
