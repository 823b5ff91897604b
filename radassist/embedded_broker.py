"""The embedded broker's transport: kombu's SQLAlchemy transport, with wake-ups.

A worker on the embedded broker finds a message only by polling its queue's table; an idle one
sleeps ``[queue] embedded_polling_seconds`` between polls, so every hand-over between stages waits
half that on average, and each poll costs a few milliseconds of CPU (an ORM query and a write
transaction), so polling faster is no cure.  The embedded broker is a SQLite file, so every process
using it is on this machine: here each queue has a named pipe beside the broker file
(``broker.sqlite3-wake/<queue>``); a publisher writes one byte to it after its message is committed,
and an idle worker waits on its queues' pipes instead of sleeping, for at most the polling interval.
A worker at its prefetch limit is woken by its own ack too, so it takes the next message waiting at
once.  A wake-up is a hint, never the message: a lost one (no reader yet, a full pipe) costs one
polling interval, as before.

Fenced as docs/STYLE.md asks: this subclass is the only place that reaches past kombu's public API
(the virtual transport's ``drain_events`` loop, its ``cycle`` and ``_deliver``, each channel's
``_active_queues``, ``basic_ack`` and ``basic_reject``, the SQLAlchemy channel's ``_put``); :func:`check_compatible` names any of them
that is gone, and ``[queue] embedded_wakeups = false`` runs kombu's transport as shipped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import stat
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import sqlalchemy as stock
from kombu.transport.virtual import base as virtual

logger = logging.getLogger(__name__)

TRANSPORT = "radassist.embedded_broker:Transport"
"""What Celery's ``broker_transport`` names (an import path, never read from a URL)."""

METHODS = ((virtual.Transport, "drain_events"), (virtual.Transport, "_deliver"), (stock.Channel, "_put"),
           (virtual.Channel, "basic_ack"), (virtual.Channel, "basic_reject"))
"""kombu's methods this module relies on beyond the public API."""
INSTANCE_ATTRIBUTES = ((virtual.Transport, ("cycle", "channels")), (virtual.Channel, ("_active_queues",)))
"""Attributes kombu's constructors set, which this module reads."""


def check_compatible() -> list[str]:
    """What this module reaches in kombu that the installed kombu lacks (empty: compatible)."""
    missing = [f"{owner.__qualname__}.{name}" for owner, name in METHODS if not callable(getattr(owner, name, None))]
    for owner, names in INSTANCE_ATTRIBUTES:
        assigned = owner.__init__.__code__.co_names
        missing += [f"{owner.__qualname__}.{name}" for name in names if name not in assigned]
    return missing


def wake_dir(url: str) -> Path:
    """The folder of the broker's wake-up pipes: beside its SQLite file."""
    database = url.split("///", 1)[-1]
    return Path(f"{database}-wake")


def _pipe(folder: Path, queue: str) -> Path:
    if not queue or "/" in queue or queue.startswith("."):
        raise ValueError(f"queue: {queue!r} is not a plain name")
    return folder / queue


def notify(folder: Path, queue: str) -> None:
    """Wake a worker waiting on ``queue``: one byte into its pipe; nothing when none waits."""
    try:
        fd = os.open(_pipe(folder, queue), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # ENXIO: no reader; ENOENT: no worker ever waited on it
        if exc.errno not in (errno.ENXIO, errno.ENOENT):
            logger.debug("no wake-up for queue %s (%s)", queue, type(exc).__name__)
        return
    try:
        os.write(fd, b"\0")
    except OSError:  # a full pipe: the reader is awake already
        pass
    finally:
        os.close(fd)


class _Waiter:
    """A worker's read ends of its queues' pipes (opened read-write, so a pipe with no writer left
    never reads as end-of-file and wakes the waiter for nothing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fds: dict[str, int] = {}

    def fd(self, queue: str) -> int:
        if queue not in self.fds:
            path = _pipe(self.folder, queue)
            self.folder.mkdir(mode=0o700, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkfifo(path, 0o600)
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                raise OSError(errno.EINVAL, f"{path.name} in the broker's wake-up folder is not a pipe")
            self.fds[queue] = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        return self.fds[queue]

    def wait(self, queues: list[str], seconds: float) -> None:
        """Until a publisher wakes one of ``queues``, or ``seconds`` pass."""
        fds = [self.fd(q) for q in queues]
        readable, _, _ = select.select(fds, [], [], seconds)
        for fd in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(fd, 4096):
                    pass

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


class Channel(stock.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super()._put(queue, payload, **kwargs)  # type: ignore[no-untyped-call]
        notify(wake_dir(self.connection.client.hostname), queue)

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        """Ack, then wake this worker: a worker at its prefetch limit waits for a free slot, and a
        message already queued sends no wake-up of its own."""
        super().basic_ack(delivery_tag, multiple=multiple)  # type: ignore[no-untyped-call]
        self._wake_own_queue()

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]
        self._wake_own_queue()

    def _wake_own_queue(self) -> None:
        for queue in list(self._active_queues)[:1]:
            notify(wake_dir(self.connection.client.hostname), queue)


class Transport(stock.Transport):
    Channel = Channel

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:  # type: ignore[override]
        """kombu's loop, waiting on the queues' pipes where it slept."""
        started = monotonic()
        interval = self.polling_interval or 1.0
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)  # type: ignore[union-attr]
                return
            except Empty:
                left = None if timeout is None else timeout - (monotonic() - started)
                if left is not None and left <= 0:
                    raise TimeoutError() from None
                self._wait(interval if left is None else min(interval, left))

    def _wait(self, seconds: float) -> None:
        queues = sorted({q for channel in self.channels for q in channel._active_queues})
        if not queues:
            select.select([], [], [], seconds)
            return
        if getattr(self, "_waiter", None) is None:
            self._waiter = _Waiter(wake_dir(self.client.hostname))  # type: ignore[union-attr]
        try:
            self._waiter.wait(queues, seconds)
        except (OSError, ValueError) as exc:  # no pipes: poll as kombu does
            logger.debug("waiting without wake-ups (%s)", type(exc).__name__)
            select.select([], [], [], seconds)

    def close_connection(self, connection: Any) -> None:
        waiter = getattr(self, "_waiter", None)
        if waiter is not None:
            waiter.close()
        super().close_connection(connection)  # type: ignore[no-untyped-call]


__all__ = ["TRANSPORT", "Transport", "check_compatible", "notify", "wake_dir"]
