"""Socket behaviour that keeps senders with Nagle on (dcmtk's default) from stalling on every PDU.

dcmtk-based senders leave Nagle on unless ``TCP_NODELAY`` is set in their environment; with
delayed ACKs on the receiving side each small PDU then waits ~40 ms for an ACK.  Re-arming
``TCP_QUICKACK`` after every read makes our side ACK at once, and ``TCP_NODELAY`` on our side
sends each response PDU (already one ``send`` per PDU in pynetdicom) without waiting.  TLS
sockets are left as they are (an ``SSLSocket`` must stay one).

This belongs in pynetdicom's ``AssociationSocket``; until it is there, our servers use
:class:`LowLatencyRequestHandler`.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

from pynetdicom import AE
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class QuickAckSocket:
    """A plain TCP socket whose every ``recv`` is followed by ``TCP_QUICKACK`` (Linux)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = self._sock.recv(bufsize, flags)
        if _QUICKACK is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                pass
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class LowLatencyRequestHandler(RequestHandler):
    """pynetdicom's handler, with ``TCP_NODELAY`` and per-read ``TCP_QUICKACK`` on plain sockets."""

    def handle(self) -> None:
        request = self.request
        if isinstance(request, socket.socket) and not isinstance(request, ssl.SSLSocket):
            try:
                request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            if _QUICKACK is not None:
                self.request = QuickAckSocket(request)
        super().handle()


class NodeServer(ThreadedAssociationServer):
    """pynetdicom's threaded server; with ``reuse_port`` several listener processes share one port.

    ``SO_REUSEPORT`` must be set between socket creation and ``bind``, which
    :meth:`AE.start_server` gives no way to do, hence this class and :func:`serve`.
    """

    reuse_port = False

    def server_bind(self) -> None:
        if self.reuse_port and hasattr(socket, "SO_REUSEPORT") and self.socket is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class ReusePortNodeServer(NodeServer):
    reuse_port = True


def serve(
    ae: AE,
    address: tuple[str, int],
    handlers: list[Any],
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> ThreadedAssociationServer:
    """Start a server thread for ``ae`` on ``address`` (what ``AE.start_server(block=False)`` does)."""
    server_class = ReusePortNodeServer if reuse_port else NodeServer
    server = server_class(
        ae,
        address,
        ae.ae_title,
        ae.supported_contexts,
        ssl_context=ssl_context,
        evt_handlers=handlers,
        request_handler=RequestHandler if ssl_context is not None else LowLatencyRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name=f"AcceptorServer@{address[1]}", daemon=True)
    thread.start()
    ae._servers.append(server)  # so AE.shutdown() and active_associations know it, as start_server does
    return server
