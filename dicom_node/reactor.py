"""pynetdicom's two reactor loops wake up when there is work, instead of on their next 1 ms poll.

pynetdicom 3 moves every PDU between two threads that poll: the DUL thread sleeps 1 ms whenever its
event queue is empty, and the association thread sleeps 1 ms before each look at its DIMSE queue.
A C-STORE waits for both polls on the way in (request) and on the way out (response): about 1.5 ms
of a small instance's 3 ms in a bare pynetdicom SCP on this project's 2-vCPU benchmark machine.

The fix keeps the loops and their 1 ms bound, and only ends a wait early:

- the DUL thread waits in ``select`` on its socket and on a wake-up socket that
  ``DULServiceProvider.send_pdu`` (the association thread handing over a response) writes to;
- the association thread waits on its DIMSE queue's condition, which the DUL thread notifies when it
  completes a message.

Both loops call ``time.sleep`` through their module's ``time``, so those two module globals are
replaced by :class:`ReactorClock`, which calls a thread's own wait when the sleeping thread has one
(the DUL and association threads of :func:`wake_on_work`'s associations) and the real
``time.sleep`` otherwise.  A wait never lasts longer than the sleep it replaces, so every loop
keeps its behaviour; it can only run sooner.  This belongs in pynetdicom (an event-driven reactor);
until then the listener installs it (:func:`install_reactor_clock`).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynetdicom.association import Association
    from pynetdicom.dul import DULServiceProvider

_WAIT_ATTRIBUTE = "_radassist_wait"
_LONGEST_REPLACED_SLEEP_S = 0.001
"""Only the reactors' polling sleeps (1 ms and shorter) are replaced; longer sleeps are real."""


class ReactorClock:
    """Stands in for the ``time`` module inside pynetdicom's ``dul`` and ``association`` modules."""

    def __init__(self, real: ModuleType = time) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        wait: Callable[[float], None] | None = getattr(threading.current_thread(), _WAIT_ATTRIBUTE, None)
        if wait is None or seconds > _LONGEST_REPLACED_SLEEP_S:
            self._real.sleep(seconds)
        else:
            wait(seconds)


_installed = threading.Lock()


def install_reactor_clock() -> None:
    """Replace ``time`` in pynetdicom's dul and association modules (once per process)."""
    import pynetdicom.association
    import pynetdicom.dul

    with _installed:
        for module in (pynetdicom.dul, pynetdicom.association):
            if not isinstance(module.time, ReactorClock):
                module.time = ReactorClock()  # type: ignore[attr-defined]


def wake_on_work(assoc: Association) -> None:
    """Give ``assoc``'s DUL and association threads waits that end when work arrives."""
    dul = assoc.dul
    wake_reader, wake_writer = socket.socketpair()
    wake_reader.setblocking(False)
    wake_writer.setblocking(False)

    original_send_pdu = dul.send_pdu

    def send_pdu(primitive: Any) -> None:
        original_send_pdu(primitive)
        try:
            wake_writer.send(b"\0")
        except OSError:  # closed (the DUL ended) or full (a wake-up is already pending)
            pass

    original_run = dul.run

    def run() -> None:
        try:
            original_run()
        finally:
            wake_reader.close()
            wake_writer.close()

    dul.send_pdu = send_pdu  # type: ignore[method-assign]
    dul.run = run  # type: ignore[method-assign]
    setattr(dul, _WAIT_ATTRIBUTE, lambda seconds: _wait_for_io(dul, wake_reader, seconds))
    setattr(assoc, _WAIT_ATTRIBUTE, lambda seconds: _wait_for_message(assoc, seconds))


def _wait_for_io(dul: DULServiceProvider, wake_reader: socket.socket, seconds: float) -> None:
    """Until the peer sent something, a primitive was handed over, or ``seconds`` passed."""
    transport = dul.socket
    sock = getattr(transport, "socket", None) if transport is not None else None
    if sock is None or isinstance(sock, ssl.SSLSocket):
        # TLS can hold decrypted bytes that select() does not see: keep the plain poll.
        time.sleep(seconds)
        return
    try:
        readable, _, _ = select.select([sock, wake_reader], [], [], seconds)
    except (OSError, ValueError):  # a socket closed meanwhile
        time.sleep(seconds)
        return
    if wake_reader in readable:
        try:
            wake_reader.recv(4096)
        except OSError:
            pass


def _wait_for_message(assoc: Association, seconds: float) -> None:
    """Until the DUL thread queues a DIMSE message, or ``seconds`` passed."""
    condition = assoc.dimse.msg_queue.not_empty
    with condition:
        condition.wait(seconds)


__all__ = ["ReactorClock", "install_reactor_clock", "wake_on_work"]
