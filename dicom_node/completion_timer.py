"""Completion at the end of a study's quiet time, from the listener that recorded its last instance.

The scheduler's sweep finds quiet studies once per tick, so a study waits up to a tick past its
quiet time.  Here each listener process keeps, per study it received, the deadline "last instance +
the pipeline's ``study_quiet_seconds``", re-armed by every instance, and when it passes runs the
sweep's own compare-and-set claim for that one study (:func:`radassist.completion.claim.claim_study`)
and sends the job's first task after the commit.  Several listener processes, the sweep and a timer
may all try one study: the claim lets exactly one win, and the others find nothing to do.

The sweep stays the backstop for everything this does not see: studies whose last instance came
before a listener restart, required-series rules and force-complete, and any failure here (logged
with the study's handle, never its data, and left to the sweep's next tick).  A first task that
cannot be sent after the commit (the broker away) is sent again every few seconds
(:mod:`dicom_node.resend`) rather than left for the sweep's two-minute check.

The C-STORE handler's cost is one call to :func:`note_instance`: a dictionary look-up and, for a
study not yet armed, one heap push, under a lock that the timer thread holds only to pop a
deadline; the claim's database work and the broker message happen on the timer thread.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.resend import Resender, Send
from radassist.broker import client, send_job_task
from radassist.completion.claim import claim_study
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import write_turn
from radassist.db.tables import Job
from radassist.identifiers import study_handle
from radassist.pipelines import pipeline_for
from radassist.prefetch.start import first_task
from radassist.startup import prepare_embedded_broker

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)


class CompletionTimer:
    """One listener process's deadlines, and the thread that claims each study when its own passes."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], send: Send | None = None) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._send = send
        self._app: Celery | None = None
        self._quiet: dict[str, float] = {}
        """Quiet seconds per called AE title (the pipeline's), resolved once."""
        self._due: dict[str, float] = {}
        """The latest deadline (``time.monotonic()``) of each armed study."""
        self._heap: list[tuple[float, str]] = []
        """One entry per armed study, possibly older than its deadline in ``_due`` (then re-pushed)."""
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="completion-timer", daemon=True)
        self._resender = Resender(lambda task, job_id, priority: self._sender()(task, job_id, priority))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._resender.stop(timeout)

    def note(self, study_instance_uid: str, called_ae: str) -> None:
        """An instance of the study was recorded now: its deadline moves to now + the quiet time."""
        quiet = self._quiet.get(called_ae)
        if quiet is None:
            quiet = self._quiet[called_ae] = pipeline_for(self._settings, called_ae).study_quiet_seconds
        due = time.monotonic() + quiet
        with self._wake:
            armed = study_instance_uid in self._due
            self._due[study_instance_uid] = due
            if not armed:
                heapq.heappush(self._heap, (due, study_instance_uid))
                if self._heap[0][1] == study_instance_uid:
                    self._wake.notify()

    def armed(self) -> int:
        """How many studies wait for their deadline."""
        with self._wake:
            return len(self._due)

    def unsent(self) -> int:
        """How many complete studies' first tasks wait for the broker to take them."""
        return self._resender.waiting()

    def _next_due(self) -> str | None:
        """Wait for the earliest deadline to pass; that study's UID, or None when stopping."""
        with self._wake:
            while not self._stopping:
                if not self._heap:
                    self._wake.wait()
                    continue
                due, uid = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                latest = self._due[uid]
                if latest > due:  # re-armed by a later instance
                    heapq.heappush(self._heap, (latest, uid))
                    continue
                del self._due[uid]
                return uid
            return None

    def _run(self) -> None:
        self._warm_up()
        while (uid := self._next_due()) is not None:
            try:
                self._complete(uid)
            except Exception as exc:  # noqa: BLE001 - the sweep completes it on its next tick
                logger.warning(
                    "completion timer: could not complete study %s (%s); left to the sweep",
                    study_handle(uid),
                    type(exc).__name__,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )

    def _complete(self, study_instance_uid: str) -> None:
        """Claim the study; send each new job's first task once the claim is committed."""
        with write_turn(self._sessions), self._sessions() as session:
            job_ids = claim_study(session, self._settings, study_instance_uid, now=utcnow())
            priorities = _priorities(session, job_ids)
            session.commit()
        task = first_task(self._settings)
        for n, job_id in enumerate(job_ids):
            try:
                self._sender()(task, job_id, priorities.get(job_id, "routine"))
            except Exception as exc:  # noqa: BLE001 - committed: sent again until the broker takes it
                for unsent in job_ids[n:]:
                    self._resender.add(task, unsent, priorities.get(unsent, "routine"))
                logger.warning("completion timer: study %s complete, but its first task could not be sent (%s); "
                               "sending it again every few seconds", study_handle(study_instance_uid),
                               type(exc).__name__)
                return

    def _sender(self) -> Send:
        if self._send is None:
            self._send = self._send_by_broker
        return self._send

    def _send_by_broker(self, task: str, job_id: uuid.UUID, priority: str) -> None:
        if self._app is None:
            self._app = client(self._settings)
        send_job_task(self._app, self._settings.broker_url, task, job_id, priority)

    def _warm_up(self) -> None:
        """Load the broker client before the first deadline, so the first study does not pay for it."""
        if self._send is not None:
            return
        try:
            self._app = client(self._settings)
            with self._app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as exc:  # noqa: BLE001 - sending retries later; the sweep is the backstop
            logger.warning("completion timer: the broker did not answer at start (%s)", type(exc).__name__)


def _priorities(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not job_ids:
        return {}
    rows = session.execute(select(Job.id, Job.priority).where(Job.id.in_(job_ids))).all()
    return {job_id: str(priority) for job_id, priority in rows}


def for_listener(settings: Settings, session_factory: sessionmaker[Session],
                 send: Send | None = None) -> CompletionTimer | None:
    """The listener's timer, not started yet (the listener starts it once it serves, and passes it
    to its C-STORE handler); None when ``[dicom] completion_timer`` is off."""
    if not settings.dicom.completion_timer:
        return None
    if send is None:
        _prepare_broker(settings)
    return CompletionTimer(settings, session_factory, send)


def _prepare_broker(settings: Settings) -> None:
    """Make the embedded broker's file (0600) and tables, as the workers do, before sending to it."""
    try:
        prepare_embedded_broker(settings)
    except Exception as exc:  # noqa: BLE001 - sending retries later; the sweep is the backstop
        logger.warning("completion timer: the embedded broker could not be prepared (%s)", type(exc).__name__)


def note_instance(timer: CompletionTimer | None, study_instance_uid: str, called_ae: str) -> None:
    """Called once per instance answered Success: (re-)arm the study's completion; never raises."""
    if timer is None:
        return
    try:
        timer.note(study_instance_uid, called_ae)
    except Exception as exc:  # noqa: BLE001 - the C-STORE is answered whatever happens here
        logger.warning("completion timer: could not arm a study (%s); left to the sweep", type(exc).__name__)


__all__ = ["CompletionTimer", "for_listener", "note_instance"]
