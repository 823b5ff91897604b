"""pynetdicom's two reactor loops sleep until there is work, instead of polling every millisecond.

pynetdicom 3 moves every PDU between two threads that poll: the DUL thread sleeps 1 ms whenever its
event queue is empty, and the association thread sleeps 1 ms before each look at its DIMSE queue.
A C-STORE waits for both polls on the way in (request) and on the way out (response), and each poll
takes the GIL from the thread doing the work.

The loops stay as they are; only their polling sleep becomes a wait that ends when work arrives:

- the DUL thread waits in ``select`` on its socket and on a wake-up socket written by
  ``send_pdu`` (the association thread handing over a response) and by ``kill_dul``/``stop_dul``;
- the association thread waits on its DIMSE queue's condition, notified when the DUL thread
  completes a message, queues an A-RELEASE/A-ABORT/A-ASSOCIATE primitive, or ends.

Anything that announces itself by none of these (the ARTIM and idle timers, a flag set by another
thread) is seen after at most :data:`LONGEST_WAIT_S`, so a timer may fire up to that much late.

Both loops call ``time.sleep`` through their module's ``time``, so those two module globals are
replaced by :class:`ReactorClock`, which calls a thread's own wait when the sleeping thread has one
(the DUL and association threads of :func:`wake_on_work`'s associations) and the real
``time.sleep`` otherwise: threads of associations served without the fast path sleep as before.
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
LONGEST_WAIT_S = 0.02
"""How long a replaced sleep may wait when no work announces itself."""


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
    message_ready = assoc.dimse.msg_queue.not_empty

    def wake_dul() -> None:
        try:
            wake_writer.send(b"\0")
        except OSError:  # closed (the DUL ended) or full (a wake-up is already pending)
            pass

    def wake_association() -> None:
        with message_ready:
            message_ready.notify_all()

    def after(method: Callable[..., Any], wake: Callable[[], None]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            finally:
                wake()

        return wrapped

    original_run, original_stop_dul = dul.run, dul.stop_dul

    def run() -> None:
        try:
            original_run()
        finally:
            wake_reader.close()
            wake_writer.close()
            wake_association()  # it may be waiting for this thread to end (``stop_dul``)

    def stop_dul() -> bool:
        wake_dul()  # ``stop_dul`` sets the kill flag, then waits for the DUL thread to see it
        return original_stop_dul()

    dul.send_pdu = after(dul.send_pdu, wake_dul)  # type: ignore[method-assign]
    dul.kill_dul = after(dul.kill_dul, wake_dul)  # type: ignore[method-assign]
    dul.stop_dul = stop_dul  # type: ignore[method-assign]
    dul.run = run  # type: ignore[method-assign]
    # A-RELEASE-RQ and A-ABORT reach the association thread through this queue, not the DIMSE one.
    dul.to_user_queue.put = after(dul.to_user_queue.put, wake_association)  # type: ignore[method-assign]
    setattr(dul, _WAIT_ATTRIBUTE, lambda seconds: _wait_for_io(dul, wake_reader, seconds))
    setattr(assoc, _WAIT_ATTRIBUTE, lambda seconds: _wait_for_message(assoc, seconds))


def _wait_for_io(dul: DULServiceProvider, wake_reader: socket.socket, seconds: float) -> None:
    """Until the peer sent something, a primitive was handed over, the DUL was told to stop,
    or :data:`LONGEST_WAIT_S` passed (``seconds``, the sleep replaced, for TLS)."""
    transport = dul.socket
    sock = getattr(transport, "socket", None) if transport is not None else None
    if sock is None or isinstance(sock, ssl.SSLSocket) or dul._kill_thread:
        # TLS can hold decrypted bytes that select() does not see: keep the plain poll.
        time.sleep(seconds)
        return
    try:
        readable, _, _ = select.select([sock, wake_reader], [], [], LONGEST_WAIT_S)
    except (OSError, ValueError):  # a socket closed meanwhile
        time.sleep(seconds)
        return
    if wake_reader in readable:
        try:
            wake_reader.recv(4096)
        except OSError:
            pass


def _wait_for_message(assoc: Association, seconds: float) -> None:
    """Until the DUL thread queues a DIMSE message or an association primitive, or ends, or
    :data:`LONGEST_WAIT_S` passed.  ``seconds`` (the sleep replaced) is not needed: every wait
    ends on work, so the bound only paces the checks nobody announces."""
    dimse_queue = assoc.dimse.msg_queue
    dul = assoc.dul
    with dimse_queue.not_empty:  # holds the queue's mutex: look at the deques, not qsize()
        if dimse_queue.queue or dul.to_user_queue.queue or not dul.is_alive():
            return
        dimse_queue.not_empty.wait(LONGEST_WAIT_S)


__all__ = ["ReactorClock", "install_reactor_clock", "wake_on_work"]
