"""Socket behaviour that keeps senders with Nagle on (dcmtk's default) from stalling on every PDU.

dcmtk-based senders leave Nagle on unless ``TCP_NODELAY`` is set in their environment; with
delayed ACKs on the receiving side each small PDU then waits ~40 ms for an ACK.  Re-arming
``TCP_QUICKACK`` after every PDU read makes our side ACK at once, and ``TCP_NODELAY`` on our side
sends each response PDU (already one ``send`` per PDU in pynetdicom) without waiting.  TLS
sockets are left as they are (an ``SSLSocket`` must stay one).

This belongs in pynetdicom's ``AssociationSocket``; until it is there, our servers use
:class:`LowLatencyRequestHandler`, whose sockets also read each PDU in bulk (:class:`BulkReadSocket`).

Both request handlers also guard the upper layer's state machine (:func:`_guard_state_machine`):
a PDU it has no transition for (an A-ASSOCIATE-AC sent to us, garbage after the RQ) or cannot
build a primitive from (an even presentation context id) raised in pynetdicom's DUL thread and
killed it; now the association is aborted, as pynetdicom does for a PDU it cannot decode.  And
they free an association slot as soon as its connection is gone
(:func:`_prompt_receive`): pynetdicom's acceptor otherwise waits the whole ACSE timeout for an
A-ASSOCIATE-RQ even after it aborted a garbage PDU and the peer closed, so sixteen bad packets
filled every slot and the node refused all senders ("Local Limit Exceeded") for 30 s.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pynetdicom import AE, _config
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

from dicom_node.balance import DEFER_S, AssociationLoad, cannot_listen
from dicom_node.inline_store import serve_stores_inline
from dicom_node.reactor import install_reactor_clock, wake_on_work
from dicom_node.responses import answer_stores_directly

if TYPE_CHECKING:
    from pynetdicom.association import Association

logger = logging.getLogger(__name__)

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class BulkReadSocket(AssociationSocket):
    """pynetdicom's association socket, reading a PDU in as few ``recv`` calls as the kernel allows.

    The library reads at most 4 KiB per ``recv`` and appends each piece to a bytearray: a
    256 KiB P-DATA-TF costs 64 system calls and as many copies, which on this project's benchmark
    machine was most of a bare SCP's time per CT slice.  Here a PDU is read into one preallocated
    buffer.  With ``quick_ack`` (plain TCP on Linux) ``TCP_QUICKACK`` is re-armed after each read,
    so a sender with Nagle on gets its ACK at once instead of after the ~40 ms delayed-ACK timer.
    """

    quick_ack = False

    def recv(self, nr_bytes: int) -> bytearray:
        sock = cast(socket.socket, self.socket)
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        nr_read = 0
        try:
            while nr_read < nr_bytes:
                received = sock.recv_into(view[nr_read:], nr_bytes - nr_read)
                if not received:  # the peer closed: return what came, as the library does
                    break
                nr_read += received
        finally:
            view.release()
        if nr_read < nr_bytes:
            del buffer[nr_read:]
        if self.quick_ack:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[arg-type]
            except OSError:
                pass
        return buffer


class QuickAckBulkReadSocket(BulkReadSocket):
    quick_ack = True


_POLL_S = 0.2


def _connection_gone(dul: Any) -> bool:
    """No primitive can come any more: the socket is closed (the DUL is back in Sta1 after Evt17),
    or we sent an A-ABORT and only wait for the close (Sta13, PS3.8 9.2).  Sta1 alone is not
    enough: an acceptor starts there until the DUL takes its transport connection event (Evt5)."""
    state = dul.state_machine.current_state
    sock = dul.socket
    closed = sock is None or sock.socket is None
    return state == "Sta13" or (state == "Sta1" and closed)


def _prompt_receive(assoc: Association) -> None:
    """Make the association's blocking waits on its DUL end early once the connection is gone.

    A blocking ``receive_pdu(wait=True, timeout=t)`` is split into short waits; between them, a
    DUL that stopped (its thread died on a PDU its state machine could not take) or a connection
    that is closed or being aborted ends the wait with None, which pynetdicom treats as the
    timeout it would otherwise have reached: the association is killed and its socket shut.
    """
    dul = assoc.dul
    original = dul.receive_pdu

    def receive_pdu(wait: bool = False, timeout: float | None = None) -> Any:
        if not wait:
            return original(wait=False, timeout=timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            primitive = original(wait=True, timeout=max(remaining, 0.001))
            if primitive is not None:
                return primitive
            if not dul.is_alive() or _connection_gone(dul):
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None

    dul.receive_pdu = receive_pdu  # type: ignore[method-assign]


def _guard_state_machine(assoc: Association) -> None:
    """Abort the association, instead of losing the DUL thread, when a state machine action raises.

    Mirrors what pynetdicom's DUL reactor does for an exception while decoding a PDU: send an
    A-ABORT (source: service provider) and stop both reactors.  Only the exception's class is
    logged: its message may quote what the peer sent.
    """
    dul = assoc.dul
    machine = dul.state_machine
    original = machine.do_action

    def do_action(event: str) -> None:
        try:
            original(event)
        except Exception as exc:  # noqa: BLE001 - anything the peer's bytes provoked in the library
            logger.warning(
                "DICOM upper layer could not handle %s in %s (%s); aborting the association",
                event,
                machine.current_state,
                type(exc).__name__,
            )
            abort = A_ABORT_RQ()
            abort.source = 0x02
            abort.reason_diagnostic = 0x00
            try:
                dul.socket.send(abort.encode())  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - the peer may be gone already
                pass
            assoc.is_aborted = True
            assoc.is_established = False
            assoc._kill = True
            dul._kill_thread = True

    machine.do_action = do_action  # type: ignore[method-assign]


class NodeRequestHandler(RequestHandler):
    """pynetdicom's handler, with associations that read PDUs in bulk, survive state machine
    errors, give up their slot once the connection is gone, wake on work
    (:mod:`dicom_node.reactor`), serve C-STORE requests on the thread that read them
    (:mod:`dicom_node.inline_store`) and encode their responses directly (:mod:`dicom_node.responses`)."""

    socket_class: type[BulkReadSocket] = BulkReadSocket

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        # The library builds a plain AssociationSocket (and queues its Evt5) with no way to pick
        # the class; ours only overrides ``recv`` and adds no state, so the object is re-classed.
        assert type(assoc.dul.socket) is AssociationSocket
        assoc.dul.socket.__class__ = self.socket_class
        _guard_state_machine(assoc)
        _prompt_receive(assoc)
        wake_on_work(assoc)
        answer_stores_directly(assoc)
        serve_stores_inline(assoc)
        load: AssociationLoad | None = getattr(self.server, "radassist_load", None)
        if load is not None:
            _count_while_running(assoc, load)
        return assoc

    def handle(self) -> None:
        try:
            super().handle()  # its last step starts the association's thread
        except BaseException:
            load: AssociationLoad | None = getattr(self.server, "radassist_load", None)
            if load is not None:
                load.association_ended()  # counted at accept; its thread never ran
            raise


def _count_while_running(assoc: Association, load: AssociationLoad) -> None:
    """The association counts towards this process's load (counted at accept) until its thread ends."""
    run = assoc.run

    def run_and_count() -> None:
        try:
            run()
        finally:
            load.association_ended()

    assoc.run = run_and_count  # type: ignore[method-assign]


class LowLatencyRequestHandler(NodeRequestHandler):
    """Also ``TCP_NODELAY`` and per-read ``TCP_QUICKACK`` on plain sockets."""

    def handle(self) -> None:
        request = self.request
        if isinstance(request, socket.socket) and not isinstance(request, ssl.SSLSocket):
            try:
                request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            if _QUICKACK is not None:
                self.socket_class = QuickAckBulkReadSocket
        super().handle()


class SharedSocketNodeServer(ThreadedAssociationServer):
    """Serves a listening socket shared by several listener processes (:mod:`dicom_node.balance`).

    The socket is bound and listening already; a process that serves more associations than the
    least busy one leaves a waiting connection to that one (``get_request`` raising an ``OSError``
    is how socketserver is told nothing was accepted).
    """

    def __init__(self, listening: socket.socket, load: AssociationLoad, *args: Any, **kwargs: Any) -> None:
        self._listening = listening
        self.radassist_load = load
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        if self.socket is not None:
            self.socket.close()  # the one socketserver made; we serve the shared one
        self.socket = self._listening
        self.socket.setblocking(False)  # losing the race for a connection must not block
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Listening starts when every process is ready (:meth:`SharedListener.listen_together`)."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        if not self.radassist_load.may_accept():
            time.sleep(DEFER_S)
            raise BlockingIOError("a less busy listener process takes this connection")
        request = super().get_request()
        self.radassist_load.association_started()
        return request

    def server_close(self) -> None:
        # No shutdown(): on a listening socket it stops listening for every process sharing it.
        if self.socket is not None:
            self.socket.close()


def serve(
    ae: AE,
    address: tuple[str, int],
    handlers: list[Any],
    *,
    ssl_context: ssl.SSLContext | None = None,
    shared: tuple[socket.socket, AssociationLoad] | None = None,
) -> ThreadedAssociationServer:
    """Start a server thread for ``ae`` on ``address`` (what ``AE.start_server(block=False)`` does).

    ``shared``: serve that listening socket with that process's load, instead of binding ``address``
    (:mod:`dicom_node.balance`).
    """
    install_reactor_clock()
    # pynetdicom binds its standard log handlers to every association's PDU and DIMSE events.  They
    # write only DEBUG and INFO lines to the "pynetdicom" logger, which radassist.logging keeps at
    # WARNING (those lines quote identifiers), yet they run for every message: one copies each
    # received data set to see whether it is empty.  Read when an association is created.
    _config.LOG_HANDLER_LEVEL = "none"
    server_class: Callable[..., ThreadedAssociationServer] = ThreadedAssociationServer
    if shared is not None:
        server_class = functools.partial(SharedSocketNodeServer, *shared)
    try:
        server = server_class(
            ae,
            address,
            ae.ae_title,
            ae.supported_contexts,
            ssl_context=ssl_context,
            evt_handlers=handlers,
            request_handler=NodeRequestHandler if ssl_context is not None else LowLatencyRequestHandler,
        )
    except OSError as exc:
        raise cannot_listen(address[0], address[1], exc) from exc
    thread = threading.Thread(target=server.serve_forever, name=f"AcceptorServer@{address[1]}", daemon=True)
    thread.start()
    ae._servers.append(server)  # so AE.shutdown() and active_associations know it, as start_server does
    return server
