"""Fixtures for the hostile-input tests: a node on SQLite, and a crash watch.

A *crash* is anything that shows the service lost control of an input: an exception that escaped
a thread (``threading.excepthook``), an error record carrying a traceback or naming an exception
in a handler, our own "failed unexpectedly" path (0x0110), or the listener thread gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest

from radassist.config import Settings
from radassist.db.migrate import upgrade
from tests.node.conftest import Node, start_node  # noqa: F401  (the fixture, for this package)

_CRASH_TEXT = ("Exception in the handler", "failed unexpectedly", "Traceback", "Unhandled", "unhandled")


@dataclass
class CrashWatch(logging.Handler):
    """Collects what counts as a crash while it is installed.

    pynetdicom's own refusals are counted apart (``library_aborts``): a PDU its DUL cannot decode
    ("Exception in DUL.run(), aborting association") and a DIMSE message it cannot decode ("Received
    an invalid DIMSE message") are answered with an A-ABORT by design, though logged with a
    traceback; so are exceptions in pynetdicom's own logging handlers (``standard_*``).  An
    exception in one of *our* event handlers is a crash.
    """

    crashes: list[str] = field(default_factory=list)
    library_aborts: int = 0

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, level=logging.WARNING)
        self._lock_ = threading.Lock()

    def __hash__(self) -> int:
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        with self._lock_:
            if record.name.startswith("pynetdicom"):
                if message.startswith(("Exception in DUL.run()", "Received an invalid DIMSE message")):
                    self.library_aborts += 1
                elif message.startswith("Exception raised in user's"):
                    handler = message.rsplit("event handler", 1)[-1].strip(" '")
                    if handler.startswith("standard_"):
                        self.library_aborts += 1
                    else:
                        self.crashes.append(f"{record.name}: {message[:200]}")
                return  # the tracebacks that follow those headers
            if record.levelno >= logging.ERROR and (record.exc_info or any(t in message for t in _CRASH_TEXT)):
                self.crashes.append(f"{record.name}: {message[:200]}")
            elif "failed unexpectedly" in message:
                self.crashes.append(f"{record.name}: {message[:200]}")

    def thread_exception(self, args: threading.ExceptHookArgs) -> None:
        with self._lock_:
            name = args.thread.name if args.thread else "?"
            self.crashes.append(f"thread {name}: {args.exc_type.__name__}")

    def take(self) -> list[str]:
        with self._lock_:
            out, self.crashes = self.crashes, []
            return out


@pytest.fixture
def crash_watch() -> Iterator[CrashWatch]:
    watch = CrashWatch()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(watch)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    previous_hook = threading.excepthook
    threading.excepthook = watch.thread_exception
    try:
        yield watch
    finally:
        threading.excepthook = previous_hook
        root.removeHandler(watch)
        root.setLevel(previous_level)


@pytest.fixture
def production_pydicom() -> Iterator[None]:
    """pydicom's default (lenient) reading, as the service runs: tests/conftest.py makes it strict,
    which would let pynetdicom abort on a bad command UID before our handler ever sees it."""
    config = pydicom.config.settings
    previous = config.reading_validation_mode
    config.reading_validation_mode = pydicom.config.WARN
    try:
        yield
    finally:
        config.reading_validation_mode = previous


@pytest.fixture
def sqlite_node(make_settings: Callable[..., Settings], start_node: Callable[..., Node], tmp_path: Path) -> Node:  # noqa: F811
    """One listener on SQLite takes a whole corpus (the PostgreSQL path is the same handler)."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'badinput.sqlite3'}")
    upgrade(settings)
    return start_node(settings)


def listener_alive(node: Node) -> bool:
    """The accepting thread still runs and its socket is open."""
    name = f"AcceptorServer@{node.port}"
    running = any(t.name == name and t.is_alive() for t in threading.enumerate())
    sock = node.server.socket
    return running and sock is not None and sock.fileno() != -1
