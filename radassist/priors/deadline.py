"""The time limit of one search, shared by every network step of it, and its cancellation.

Each step asks :meth:`Deadline.timeout` for its own timeout (its configured cap, never more than
what is left), so no single wait outlives the search.  When the caller stops waiting,
:meth:`Deadline.cancel` runs the hooks the sources registered (abort the association, close the
HTTP client), so a step that is blocked ends as soon as the library lets it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from radassist.priors.results import PriorSourceError

logger = logging.getLogger(__name__)

#: A step is not started with less time than this left: it could not finish.
MIN_STEP_SECONDS = 0.05


class Deadline:
    """A monotonic end time plus a cancel flag; safe to use from several threads."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError('Argument "seconds" must be positive.')
        self._end = time.monotonic() + seconds
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def remaining(self) -> float:
        return 0.0 if self.cancelled else max(0.0, self._end - time.monotonic())

    def check(self) -> None:
        """Raise ``priors.timeout`` once the time is up or the search was cancelled."""
        if self.remaining() < MIN_STEP_SECONDS:
            raise PriorSourceError("the time limit of the prior search ran out", code="priors.timeout")

    def timeout(self, cap: float) -> float:
        """The timeout of the next step: ``cap``, or what is left if that is less."""
        self.check()
        return min(cap, self.remaining())

    @contextmanager
    def on_cancel(self, hook: Callable[[], object]) -> Iterator[None]:
        """Run ``hook`` if the search is cancelled while the ``with`` block runs."""
        with self._lock:
            if self.cancelled:
                raise PriorSourceError("the prior search was cancelled", code="priors.timeout")
            self._hooks.append(hook)
        try:
            yield
        finally:
            with self._lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

    def cancel(self) -> None:
        """Stop the search: later steps raise ``priors.timeout``; blocked ones are interrupted."""
        with self._lock:
            self._cancelled.set()
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 -- a failed interruption must not hide the timeout
                logger.debug("cancelling a prior source step failed: %s", type(exc).__name__)
