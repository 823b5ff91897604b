"""The completion timer's first tasks that could not be sent, sent again every few seconds.

The timer commits a study's claim, then sends its job's first task.  When the broker is away (a
restart, a network cut) the send fails after the commit: the job is ``queued`` with no message.
The sweep finds such a job only once it is two minutes old and its queue is empty; here it is sent
again every :data:`RESEND_INTERVAL_S` until the broker takes it, so a study completed during a
broker restart is drafted seconds after the broker is back.  A job sent twice (here and by the
sweep) is claimed once: every task starts with its compare-and-set.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable

logger = logging.getLogger(__name__)

RESEND_INTERVAL_S = 2.0
MAX_WAITING = 10_000
"""Beyond this many unsent tasks the oldest are left to the sweep (a broker away for hours)."""

Send = Callable[[str, uuid.UUID, str], None]
"""Send ``task`` for a job id with the job's priority (``routine`` or ``stat``)."""


class Resender:
    """Holds ``(task, priority)`` per job id and sends them again until each is taken."""

    def __init__(self, send: Send, interval_s: float = RESEND_INTERVAL_S) -> None:
        self._send = send
        self._interval_s = interval_s
        self._waiting: OrderedDict[uuid.UUID, tuple[str, str]] = OrderedDict()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(self, task: str, job_id: uuid.UUID, priority: str) -> None:
        with self._wake:
            self._waiting[job_id] = (task, priority)
            while len(self._waiting) > MAX_WAITING:
                self._waiting.popitem(last=False)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="completion-resend", daemon=True)
                self._thread.start()

    def waiting(self) -> int:
        with self._wake:
            return len(self._waiting)

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
        if left := self.waiting():
            logger.warning("completion timer: %d first tasks still unsent at stop; left to the sweep", left)

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stopping, timeout=self._interval_s)
                if self._stopping:
                    return
                batch = list(self._waiting.items())
            sent = 0
            for job_id, (task, priority) in batch:
                try:
                    self._send(task, job_id, priority)
                except Exception as exc:  # noqa: BLE001 - still away: the next round tries again
                    logger.debug("completion timer: the broker still refuses (%s)", type(exc).__name__)
                    break  # the broker is still away: the rest waits for the next round
                with self._wake:
                    self._waiting.pop(job_id, None)
                sent += 1
            if sent:
                logger.info("completion timer: %d first tasks sent now that the broker is back", sent)


__all__ = ["Resender", "Send"]
