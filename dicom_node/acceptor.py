"""The listener's association servers, built on pynetdicom's public hooks only.

:class:`NodeServer` is pynetdicom's ``ThreadedAssociationServer``, made by ``AE.make_server`` with
our request handler, that accepts through the connection guard (:mod:`dicom_node.connections`):
socketserver's ``get_request`` hands pynetdicom a guarded socket, and the TLS handshake happens on
the connection's own thread (:class:`NodeRequestHandler`) within the ARTIM time, so a silent TLS
client never holds the accepting thread.  With ``[dicom] listener_processes`` > 1 it serves a
listening socket shared with the other processes (:mod:`dicom_node.balance`).

The servers are not registered with the AE (``AE.start_server`` would): the listener counts its
associations itself (:class:`~dicom_node.associations.AssociationRegistry`), stops its servers
itself, and lists their associations with each server's ``active_associations``.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from pynetdicom import AE, _config
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from dicom_node.association_request import DecodedRequest, await_association_request
from dicom_node.balance import DEFER_S, AssociationLoad, cannot_listen
from dicom_node.connections import Connections
from dicom_node.pdu_framing import _Guarded

if TYPE_CHECKING:
    from dicom_node.listener_state import ListenerState

logger = logging.getLogger(__name__)


class NodeRequestHandler(RequestHandler):
    """pynetdicom's request handler, handing pynetdicom only connections whose A-ASSOCIATE-RQ is
    here (:mod:`dicom_node.association_request`), after the TLS handshake on the TLS port; both
    happen on the connection's own thread, within the ARTIM time."""

    decoded_request: DecodedRequest | None = None
    """The connection's A-ASSOCIATE-RQ, decoded once it is whole (before pynetdicom reads it)."""

    def handle(self) -> None:
        request = self.request
        assert isinstance(request, _Guarded)
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ValueError) as exc:
                logger.info("TLS handshake with %s failed (%s)", self.client_address[0], type(exc).__name__)
                request.close()
                return
        self.decoded_request = await_association_request(request, request.connection.negotiation_deadline)
        if self.decoded_request is None:
            request.close()
            return
        super().handle()


class NodeServer(ThreadedAssociationServer):
    """A threaded association server that accepts through :class:`Connections`."""

    daemon_threads = True
    block_on_close = False
    """Stopping does not wait for request threads: one may sit in a TLS handshake until its ARTIM time."""

    shared: ListenerState | None = None
    """What the listener's handlers share (counters, sessions, guard, timer...), for stopping and tests."""
    tls_server: NodeServer | None = None

    def __init__(
        self,
        *args: Any,
        connections: Connections,
        shared: tuple[socket.socket, AssociationLoad] | None = None,
        **kwargs: Any,
    ) -> None:
        self.connections = connections
        self._listening: socket.socket | None = shared[0] if shared is not None else None
        self.load: AssociationLoad | None = shared[1] if shared is not None else None
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        if self._listening is None:
            super().server_bind()
            return
        if self.socket is not None:
            self.socket.close()  # the one socketserver made; we serve the shared one
        self.socket = self._listening
        self.socket.setblocking(False)  # losing the race for a connection must not block
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """A shared socket listens when every process is ready (``SharedListener.listen_together``)."""
        if self._listening is None:
            super().server_activate()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        """Accept one connection and adopt it into the guard (raising ``OSError`` means: none taken)."""
        if self.load is not None and not self.load.may_accept():
            time.sleep(DEFER_S)
            raise BlockingIOError("a less busy listener process takes this connection")
        assert self.socket is not None
        raw, address = self.socket.accept()
        try:
            return self.connections.adopt(raw, address, self.ssl_context), address
        except BaseException:
            raw.close()
            raise

    def server_close(self) -> None:
        if self._listening is None:
            super().server_close()
        elif self.socket is not None:
            # No shutdown(): on a listening socket it stops listening for every process sharing it.
            self.socket.close()

    def shutdown(self) -> None:
        """Stop accepting and close the listening socket (the AE never knew this server)."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()


def serve(
    ae: AE,
    address: tuple[str, int],
    handlers: list[Any],
    *,
    request_handler: type[NodeRequestHandler],
    connections: Connections,
    ssl_context: ssl.SSLContext | None = None,
    shared: tuple[socket.socket, AssociationLoad] | None = None,
) -> NodeServer:
    """Start a server thread for ``ae`` on ``address``; ``shared``: serve that listening socket instead."""
    # pynetdicom binds its standard log handlers to every association's PDU and DIMSE events.  They
    # write only DEBUG and INFO lines to the "pynetdicom" logger, which radassist.logging keeps at
    # WARNING (those lines quote identifiers), yet they run for every message.  Read when a server
    # is made.
    _config.LOG_HANDLER_LEVEL = "none"
    try:
        server = cast(
            NodeServer,
            ae.make_server(
                address,
                ssl_context=ssl_context,
                evt_handlers=handlers,
                server_class=NodeServer,
                request_handler=request_handler,
                connections=connections,
                shared=shared,
            ),
        )
    except OSError as exc:
        raise cannot_listen(address[0], address[1], exc) from exc
    thread = threading.Thread(target=server.serve_forever, name=f"AcceptorServer@{address[1]}", daemon=True)
    thread.start()
    return server


__all__ = ["NodeRequestHandler", "NodeServer", "serve"]
