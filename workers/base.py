"""The one base class of our tasks: settings and a database session per task run."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from celery import Task
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.store.outputs import OutputStore

logger = logging.getLogger(__name__)

_lock = threading.Lock()

P = ParamSpec("P")
R = TypeVar("R")

DB_OUTAGE_TOLERANCE_S = 300.0
"""How long a task waits out an unreachable database before it gives up on a step."""
_sessionmakers: dict[str, sessionmaker[Session]] = {}


class RadAssistTask(Task):  # type: ignore[misc]
    """Tasks take ids, never objects.  The session factory is made lazily in the worker process
    (after the prefork pool has forked), once per process and database."""

    abstract = True

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.radassist_settings
        return settings

    @property
    def outputs(self) -> OutputStore:
        return OutputStore(self.settings.storage.outputs_dir)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """This process's session factory for the settings' database (for code that opens its own sessions)."""
        url = self.settings.database_url
        maker = _sessionmakers.get(url)
        if maker is None:
            with _lock:
                maker = _sessionmakers.get(url)
                if maker is None:
                    maker = _sessionmakers[url] = make_sessionmaker(self.settings)
        return maker

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session


def reset_sessionmaker() -> None:
    """Forget engines inherited from the parent in a freshly forked worker process."""
    for maker in _sessionmakers.values():
        bind = maker.kw.get("bind")
        if bind is not None:
            bind.dispose(close=False)
    _sessionmakers.clear()


def retry_while_db_down(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated step again (fresh session each time) while the database cannot be reached.

    Why: some steps hold the only copy of a result in memory -- a finished draft, or the fact that
    the PACS or RIS has just accepted a delivery.  If a database restart made such a step raise, the
    job would stay ``drafting`` (or the delivery ``sending``) until the sweep's long cutoffs, and the
    sweep would then send a delivered SR or ORU a second time.  Waiting the outage out (up to
    ``DB_OUTAGE_TOLERANCE_S``) keeps the result.  Each step is one transaction guarded by a
    compare-and-set, so running it again after a failed attempt is harmless.
    """

    def decorate(step: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(step)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            deadline = time.monotonic() + DB_OUTAGE_TOLERANCE_S
            delay = 0.5
            while True:
                try:
                    return step(*args, **kwargs)
                except (OperationalError, InterfaceError) as exc:
                    if time.monotonic() + delay > deadline:
                        raise
                    logger.warning("database unreachable (%s) while %s; trying again in %.1f s",
                                   type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
                                   what, delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)

        return run

    return decorate
