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

    @contextmanager
    def session(self) -> Iterator[Session]:
        url = self.settings.database_url
        maker = _sessionmakers.get(url)
        if maker is None:
            with _lock:
                maker = _sessionmakers.get(url)
                if maker is None:
                    maker = _sessionmakers[url] = make_sessionmaker(self.settings)
        with maker() as session:
            yield session


def reset_sessionmaker() -> None:
    """Forget engines inherited from the parent in a freshly forked worker process."""
    for maker in _sessionmakers.values():
        bind = maker.kw.get("bind")
        if bind is not None:
            bind.dispose(close=False)
    _sessionmakers.clear()
