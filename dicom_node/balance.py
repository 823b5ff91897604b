"""Several listener processes accept from one listening socket; the least busy takes each association.

The first process binds the port, and every process serves that one socket (:class:`SharedListener`,
handed to the spawned processes), rather than each binding its own with ``SO_REUSEPORT``, where the
kernel picks a process by hashing the caller's address, blind to how busy each is.  Each process
keeps its number of open connections in shared memory (:class:`AssociationLoad`).  When a
connection waits, every process is woken; one that serves more than the least busy process stands
back (:data:`DEFER_S`) so that process takes it.  A sibling that is hung or gone cannot strand a
caller: after :data:`LONGEST_DEFERRAL_S` of standing back, a process accepts anyway.

The socket listens only once every process is ready (:meth:`SharedListener.listen_together`):
a caller that connects during start-up is refused and retries, instead of waiting in the backlog
for the first process that happens to be ready, which would take it whatever the others' load.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from pynetdicom.transport import AddressInformation

from radassist.errors import ConfigError

logger = logging.getLogger(__name__)

DEFER_S = 0.001
"""How long a busier process waits before looking again at a waiting connection."""
LONGEST_DEFERRAL_S = 0.02
"""After standing back this long for one connection, a process accepts it whatever the load."""
_NEW_CONNECTION_AFTER_S = 0.05
"""A look this long after the last deferral is about a new connection (a sibling took the old one)."""
NOT_SERVING = -1
"""A process's load slot before it serves and after it stopped: not a candidate for new associations."""
STARTUP_TIMEOUT_S = 60.0
"""How long the processes wait for one another before accepting; a process that is not up by then is left out."""


class AssociationLoad:
    """One process's view of the running associations of every listener process (shared memory).

    Only the owning process writes its slot (under a thread lock: ``+=`` on shared memory is not
    atomic); the others read it without locking, which at worst misjudges one connection.
    """

    def __init__(self, slots: Any, index: int) -> None:
        self._slots = slots
        self._index = index
        self._lock = threading.Lock()
        self._first_deferral: float | None = None
        self._last_deferral = 0.0

    def start_serving(self) -> None:
        with self._lock:
            self._slots[self._index] = 0

    def stop_serving(self) -> None:
        with self._lock:
            self._slots[self._index] = NOT_SERVING

    def association_started(self) -> None:
        with self._lock:
            self._slots[self._index] += 1

    def association_ended(self) -> None:
        with self._lock:
            self._slots[self._index] = max(0, self._slots[self._index] - 1)

    def may_accept(self) -> bool:
        """Whether this process should take the waiting connection now (acceptor thread only)."""
        mine = self._slots[self._index]
        fewest = min((n for n in self._slots if n != NOT_SERVING), default=mine)
        now = time.monotonic()
        if self._first_deferral is not None and now - self._last_deferral > _NEW_CONNECTION_AFTER_S:
            self._first_deferral = None
        if mine <= fewest:
            self._first_deferral = None
            return True
        if self._first_deferral is None:
            self._first_deferral = now
        elif now - self._first_deferral >= LONGEST_DEFERRAL_S:
            self._first_deferral = None
            return True
        self._last_deferral = now
        return False


@dataclass
class SharedListener:
    """What the first listener process hands to the others: its sockets, the load slots, a start barrier."""

    plain: socket.socket
    tls: socket.socket | None
    backlog: int
    slots: Any
    all_ready: Any
    listening: Any
    """Set once the processes passed ``all_ready``: a process started later (a replacement) listens at once."""

    @classmethod
    def open(cls, host: str, port: int, tls_port: int, processes: int, backlog: int) -> SharedListener:
        """Bind the port(s) now, so that a port in use fails the start at once; listen later."""
        context = multiprocessing.get_context("spawn")
        plain = _bound_socket(host, port)
        try:
            tls = _bound_socket(host, tls_port) if tls_port else None
        except BaseException:
            plain.close()
            raise
        return cls(
            plain=plain,
            tls=tls,
            backlog=backlog,
            slots=context.RawArray("i", [NOT_SERVING] * processes),
            all_ready=context.Barrier(processes),
            listening=context.Event(),
        )

    def load(self, index: int) -> AssociationLoad:
        return AssociationLoad(self.slots, index)

    def listen_together(self) -> None:
        """Once every listener process is here (or the wait timed out), listen.

        Every process calls ``listen``: on a socket that listens already it only sets the backlog
        again, and no process polls the socket before its own call returned.  A process started
        in place of one that died finds ``listening`` set and does not wait.
        """
        if not self.listening.is_set():
            try:
                self.all_ready.wait(STARTUP_TIMEOUT_S)
            except threading.BrokenBarrierError:
                logger.warning("not every listener process started in time; listening with those that did")
            self.listening.set()
        for bound in (self.plain, self.tls):
            if bound is not None:
                bound.listen(self.backlog)

    def close(self) -> None:
        for listening in (self.plain, self.tls):
            if listening is not None:
                listening.close()


def _bound_socket(host: str, port: int) -> socket.socket:
    """Bound as pynetdicom's server binds (its address family rules, ``SO_REUSEADDR``), not listening."""
    address = AddressInformation.from_tuple((host, port))
    bound = socket.socket(address.address_family, socket.SOCK_STREAM)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.bind(address.as_tuple)
    except OSError as exc:
        bound.close()
        raise cannot_listen(host, port, exc) from exc
    except BaseException:
        bound.close()
        raise
    return bound


def cannot_listen(host: str, port: int, exc: OSError) -> ConfigError:
    """What an admin reads when the DICOM port cannot be had (in use, a privileged port, no such address)."""
    return ConfigError(
        f"cannot listen for DICOM on {host or '*'}:{port} ({exc.strerror or exc}): another DICOM node may hold "
        "the port, or choose another [dicom] port / tls_port",
        code="config.port_unavailable",
    )


__all__ = ["AssociationLoad", "SharedListener"]
