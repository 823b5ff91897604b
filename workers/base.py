"""The one base class of our tasks: settings and a database session per task run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Task
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.store.outputs import OutputStore

_lock = threading.Lock()


class RadAssistTask(Task):  # type: ignore[misc]
    """Tasks take ids, never objects; the session factory is made lazily in the worker process
    (after the prefork pool has forked), once per process."""

    abstract = True
    _sessionmaker: sessionmaker[Session] | None = None

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.radassist_settings
        return settings

    @property
    def outputs(self) -> OutputStore:
        return OutputStore(self.settings.storage.outputs_dir)

    @contextmanager
    def session(self) -> Iterator[Session]:
        cls = type(self)
        if RadAssistTask._sessionmaker is None:
            with _lock:
                if RadAssistTask._sessionmaker is None:
                    RadAssistTask._sessionmaker = make_sessionmaker(self.settings)
        del cls
        with RadAssistTask._sessionmaker() as session:
            yield session


def reset_sessionmaker() -> None:
    """Forget the parent's engine in a freshly forked worker process."""
    RadAssistTask._sessionmaker = None
