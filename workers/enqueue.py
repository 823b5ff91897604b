"""Queue Celery messages only once the database change they refer to is committed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


def after_commit(session: Session, send: Callable[[], Any]) -> None:
    """Run ``send`` (an ``apply_async`` call) after the session's next successful commit.

    A task queued before its row is committed could run, find nothing, and exit: the job would
    then wait for the reconciler instead of running now.
    """

    def _send(_session: Session) -> None:
        send()

    event.listen(session, "after_commit", _send, once=True)
