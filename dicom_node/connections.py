"""Every TCP connection of a listener process, from accept to close: the limits a hostile network meets.

A connection is not an association until we accepted one on it.  These rules hold whether or not
the pynetdicom fast path is on (they use only sockets and socketserver's hooks):

- A connection on which no association was accepted (our A-ASSOCIATE-AC sent) within the ARTIM
  time (``[dicom] artim_timeout_seconds``, PS3.8 9.1.5) is shut.  On the TLS port the handshake
  counts against the same time and runs on the connection's own thread, never on the accepting one;
  pynetdicom is handed the connection only once its A-ASSOCIATE-RQ is whole
  (:mod:`dicom_node.association_request`).
- Connections still negotiating are counted apart from associations: at most
  ``[dicom] max_pending_connections``; one more closes the oldest still negotiating.  They never
  take an association slot (:class:`~dicom_node.associations.AssociationRegistry`), so silent or
  trickling sockets cannot keep a real sender out.
- A PDU that began to arrive must be whole within ``[dicom] network_timeout_seconds``, and each
  send must be taken by the peer within it.
- No PDU is read whose declared length the protocol state does not allow
  (:mod:`dicom_node.pdu_framing`): the connection gets an A-ABORT instead.

One reaper thread per process shuts overdue connections (``shutdown``: a read or send blocked in
pynetdicom's threads then ends, and pynetdicom closes the connection as if the peer had).  Log
lines name the peer's address and the rule, never anything the peer sent.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dicom_node.balance import AssociationLoad
from dicom_node.pdu_framing import GuardedSocket, GuardedSSLSocket, Refused, _Guarded, a_abort, largest_p_data
from radassist.config import Settings

logger = logging.getLogger(__name__)

REAP_INTERVAL_S = 0.25
"""How often the reaper looks for overdue connections; a limit is enforced up to this much late."""


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits of :class:`Connections`, from ``[dicom]``."""

    artim_seconds: float
    pdu_seconds: float
    max_pending: int
    largest_p_data: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        dicom = settings.dicom
        return cls(
            artim_seconds=dicom.artim_timeout_seconds,
            pdu_seconds=dicom.network_timeout_seconds,
            max_pending=dicom.max_pending_connections,
            largest_p_data=largest_p_data(),
        )


class Connection:
    """One accepted connection; its socket reports what it sees here."""

    __slots__ = (
        "_owner", "accepted", "accepted_at", "ended", "negotiation_deadline", "peer", "shut", "sock", "when_closed"
    )

    def __init__(self, owner: Connections, sock: _Guarded, peer: str) -> None:
        self._owner = owner
        self.sock = sock
        self.peer = peer
        self.accepted_at = time.monotonic()
        self.negotiation_deadline = self.accepted_at + owner.limits.artim_seconds
        """``time.monotonic()`` by which an association must be accepted on this connection."""
        self.accepted = False
        """Our A-ASSOCIATE-AC was sent: an association, no longer a connection negotiating."""
        self.shut = False
        self.ended = False
        self.when_closed: Callable[[], None] | None = None

    def answered(self, accepted: bool) -> None:
        """Our first PDU went out: an A-ASSOCIATE-AC (``accepted``), an -RJ or an A-ABORT."""
        self._owner._answered(self, accepted)

    def refuse(self, refused: Refused) -> None:
        self._owner._refuse(self, refused)

    def closed(self) -> None:
        self._owner._end(self)

    def on_close(self, report: Callable[[], None]) -> None:
        """Call ``report`` once when the socket is closed (at once if it is), by whichever thread closes it."""
        self._owner._on_close(self, report)


class Connections:
    """The connections of one listener process (both ports): adopted at accept, forgotten at close."""

    def __init__(self, limits: ConnectionLimits, load: AssociationLoad | None = None) -> None:
        self.limits = limits
        self._load = load
        self._lock = threading.Condition()
        self._open: dict[Connection, None] = {}
        self._pending: dict[Connection, None] = {}
        """Open connections without an accepted association, oldest first."""
        self._counted: set[Connection] = set()
        """Connections counted in the load of :mod:`dicom_node.balance`."""
        self._reaper: threading.Thread | None = None
        self._stopped = False

    @property
    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def adopt(self, raw: socket.socket, address: object, ssl_context: ssl.SSLContext | None) -> socket.socket:
        """The socket to serve ``raw`` (just accepted) with, counted as negotiating from now on."""
        peer = str(address[0]) if isinstance(address, tuple) and address else str(address)
        sock: GuardedSocket | GuardedSSLSocket
        if ssl_context is None:
            sock = GuardedSocket(fileno=raw.detach())
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each response PDU goes out at once
            except OSError:
                pass
        else:
            ssl_context.sslsocket_class = GuardedSSLSocket
            wrapped = ssl_context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            assert isinstance(wrapped, GuardedSSLSocket)
            sock = wrapped
        connection = Connection(self, sock, peer)
        sock.attach(connection, self.limits.largest_p_data)
        evicted: Connection | None = None
        with self._lock:
            if len(self._pending) >= self.limits.max_pending:
                evicted = next(iter(self._pending))
            self._open[connection] = None
            self._pending[connection] = None
            if self._load is not None:
                self._counted.add(connection)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_forever, name="dicom-connections", daemon=True)
                self._reaper.start()
            self._lock.notify_all()
        if self._load is not None:
            self._load.association_started()
        if evicted is not None:
            self._shut(evicted, f"more than {self.limits.max_pending} connections negotiating; closing the oldest")
        return sock

    def shut_pending(self) -> None:
        """Shut every connection still negotiating (the listener is stopping)."""
        with self._lock:
            pending = list(self._pending)
        for connection in pending:
            self._shut(connection, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    # --- reports from the sockets ---------------------------------------------------------------

    def _answered(self, connection: Connection, accepted: bool) -> None:
        if accepted:
            connection.accepted = True
            with self._lock:
                self._pending.pop(connection, None)

    def _refuse(self, connection: Connection, refused: Refused) -> None:
        try:  # past the guard: this is not a PDU of the association
            super(_Guarded, connection.sock).sendall(a_abort(refused.reason))  # type: ignore[misc]
        except OSError:
            pass
        self._shut(connection, f"A-ABORT: {refused.describe()}")

    def _end(self, connection: Connection) -> None:
        with self._lock:
            if connection.ended:
                return
            connection.ended = True
            self._open.pop(connection, None)
            self._pending.pop(connection, None)
            report, connection.when_closed = connection.when_closed, None
        self._uncount(connection)
        if report is not None:
            _report(report)

    def _on_close(self, connection: Connection, report: Callable[[], None]) -> None:
        with self._lock:
            if not connection.ended:
                connection.when_closed = report
                return
        _report(report)

    # --- shutting ---------------------------------------------------------------------------------

    def _shut(self, connection: Connection, why: str | None) -> None:
        with self._lock:
            if connection.shut or connection.ended:
                return
            connection.shut = True
            self._pending.pop(connection, None)
        try:  # the socket's own shutdown, also under TLS: it ends a read or send blocked on it
            socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)  # type: ignore[arg-type]
        except OSError:
            pass
        if why is not None:
            logger.warning("closing the connection from %s: %s", connection.peer, why)
        self._uncount(connection)

    def _uncount(self, connection: Connection) -> None:
        with self._lock:
            counted = connection in self._counted
            self._counted.discard(connection)
        if counted and self._load is not None:
            self._load.association_ended()

    def _overdue(self, connection: Connection, now: float) -> str | None:
        limits = self.limits
        if not connection.accepted and now > connection.negotiation_deadline:
            return f"no association within the ARTIM time ({limits.artim_seconds:g} s)"
        sock = connection.sock
        started = sock.framing.pdu_started
        if started is not None and now - started > limits.pdu_seconds:
            return f"a PDU not complete within {limits.pdu_seconds:g} s"
        sending = sock.sending_since
        if sending is not None and now - sending > limits.pdu_seconds:
            return f"the peer took no data for {limits.pdu_seconds:g} s"
        return None

    def _reap_forever(self) -> None:
        while True:
            with self._lock:
                while not self._stopped and not self._open:
                    self._lock.wait()
                if self._stopped:
                    return
                connections = [c for c in self._open if not c.shut]
            now = time.monotonic()
            for connection in connections:
                try:
                    why = self._overdue(connection, now)
                    if why is not None:
                        self._shut(connection, why)
                except Exception:  # noqa: BLE001 - the reaper must outlive any one connection
                    logger.exception("could not check a connection's deadlines")
            with self._lock:
                if self._stopped:
                    return
                self._lock.wait(REAP_INTERVAL_S)


def _report(report: Callable[[], None]) -> None:
    try:
        report()
    except Exception:  # noqa: BLE001 - a report must not break the close
        logger.exception("could not report a closed connection")


__all__ = ["Connection", "ConnectionLimits", "Connections"]
