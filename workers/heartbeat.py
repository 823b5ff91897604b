"""The worker's heartbeat: its main process reports in every ``[queue] worker_heartbeat_seconds``.

A thread of the main process, never the pool child that runs a job, so a long draft cannot make
its worker look gone.  It reports until the process exits (``atexit``), which a warm shutdown
reaches only after the pool has finished its jobs; then it reports the stop.  A worker killed whole
reports nothing more, and the sweep hands back its jobs once it has been silent for
``[queue] worker_lost_after_seconds`` (:func:`radassist.drafting.recover.hand_back_from_silent`).

Its engine keeps no connection between reports: the prefork pool forks new children from this
process, and a child must not inherit an open connection to the database server.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_engine
from radassist.presence.report import report_seen, report_start, report_stop

logger = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_S = 1.0
STOP_REPORT_WAIT_S = 3.0
"""How long the process's exit waits for the stop report (a database that does not answer must not hold it)."""


class Heartbeat:
    """Reports ``name`` in at start, every ``interval_s`` after, and its stop at exit."""

    def __init__(self, settings: Settings, name: str, queues: Iterable[str]) -> None:
        self.name = name
        self._queues = tuple(queues)
        self._interval_s = settings.queue.worker_heartbeat_seconds
        self._sessions = sessionmaker(make_engine(settings.database_url, pooled=False))
        self._stopping = threading.Event()
        self._first_wait = self._interval_s
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._first_wait = self._wait_after(self._report(self._start))
        self._thread.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Report the stop (at most :data:`STOP_REPORT_WAIT_S`); later calls do nothing."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._thread.join(timeout=STOP_REPORT_WAIT_S)

    def _run(self) -> None:
        wait = self._first_wait
        while not self._stopping.wait(wait):
            wait = self._wait_after(self._report(self._seen))
        self._report(lambda session: report_stop(session, self.name, utcnow()))
        self._sessions.kw["bind"].dispose()

    def _wait_after(self, reported: bool) -> float:
        # After a failed report, soon again: once the database is back, the sweep must not find
        # this worker silent for longer than it has to.
        return self._interval_s if reported else min(RETRY_AFTER_FAILURE_S, self._interval_s)

    def _start(self, session: Session) -> None:
        report_start(session, self.name, self._queues, os.getpid(), utcnow())

    def _seen(self, session: Session) -> None:
        if not report_seen(session, self.name, utcnow(), self._interval_s):
            self._start(session)

    def _report(self, write: Callable[[Session], None]) -> bool:
        # A database that does not answer must not stop the worker: the next report tries again, and
        # a worker silent long enough only has its jobs drafted again elsewhere.
        try:
            with self._sessions() as session:
                write(session)
                session.commit()
        except Exception as exc:  # noqa: BLE001 - logged once; retried every second until it works
            if not self._failing:
                logger.warning("could not report this worker in (%s); trying again every %.0f s",
                               type(exc).__name__, min(RETRY_AFTER_FAILURE_S, self._interval_s))
            self._failing = True
            return False
        if self._failing:
            logger.info("this worker reports in again")
        self._failing = False
        return True


__all__ = ["Heartbeat"]
