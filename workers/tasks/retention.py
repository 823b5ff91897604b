"""The scheduler's retention run: remove the files of done studies (:mod:`radassist.retention`), the
embedded broker's delivered messages and the workers gone for a week (:mod:`radassist.presence.forget`).
Only wiring: the rules live in ``radassist/retention`` and ``radassist/presence``."""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from sqlalchemy.orm import Session, sessionmaker

from radassist.broker import RETENTION_TASK
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.presence.forget import forget_gone_workers
from radassist.retention.broker import remove_delivered_messages
from radassist.retention.run import run_retention
from workers.base import RadAssistTask

logger = logging.getLogger(__name__)

_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def _session_factory(settings: Settings) -> sessionmaker[Session]:
    """One session factory per process and database (retention takes the listeners' write turn
    through it on SQLite)."""
    with _lock:
        factory = _factories.get(settings.database_url)
        if factory is None:
            factory = _factories[settings.database_url] = make_sessionmaker(settings)
        return factory


@shared_task(base=RadAssistTask, bind=True, name=RETENTION_TASK, acks_late=False, ignore_result=True)
def retention(self: RadAssistTask) -> None:
    settings = self.settings
    sessions = _session_factory(settings)
    run_retention(sessions, settings, now=utcnow())
    with sessions() as session:
        forget_gone_workers(session, utcnow())
        session.commit()
    try:
        remove_delivered_messages(settings.broker_url)
    except Exception as exc:  # noqa: BLE001 - housekeeping: the next run tries again
        logger.warning("could not remove the embedded broker's delivered messages (%s)", type(exc).__name__)
