"""The PDU framing of every accepted connection, watched below pynetdicom: no buffer sized by the peer.

Every upper layer PDU starts with its type (1 byte), a reserved byte and the length of the rest
(4 bytes, big endian; PS3.8 9.3.1).  The listener's sockets (:class:`GuardedSocket`, and
:class:`GuardedSSLSocket` on the TLS port) follow that framing in the bytes they hand to pynetdicom,
whichever way pynetdicom reads them, and keep these rules:

- Until our A-ASSOCIATE-AC is sent, only an A-ASSOCIATE-RQ, A-RELEASE-RQ or A-ABORT of at most
  :data:`LARGEST_OTHER_PDU` bytes is read; after it, a P-DATA-TF of at most our maximum PDU length
  plus a PDV item header (:func:`largest_p_data`), and any other known PDU of at most
  :data:`LARGEST_OTHER_PDU`.
- A header that declares more, or an unknown PDU type, is answered with an A-ABORT (source: service
  provider, PS3.8 Table 9-26) and the connection is shut; the read that completed the header
  reports the connection closed, so pynetdicom never asks for the body and allocates nothing for it.
- When a PDU started arriving and when a send started are kept, for the deadlines the listener's
  :class:`~dicom_node.connections.Connections` enforces on reads and sends that stall.

The first PDU we send on a connection decides whether an association was accepted: an
A-ASSOCIATE-AC, and only that, opens the P-DATA phase.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from dicom_node.ae import MAXIMUM_PDU_SIZE

if TYPE_CHECKING:
    from dicom_node.connections import Connection

A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_ABORT = 0x07
KNOWN_PDU_TYPES = frozenset(range(0x01, 0x08))
HEADER_BYTES = 6
PDV_ITEM_HEADER_BYTES = 6
"""Item length (4), presentation context ID (1), message control header (1) of one PDV (PS3.8 9.3.5.1)."""

LARGEST_OTHER_PDU = 64 * 1024
"""The most any PDU other than a P-DATA-TF may declare: an A-ASSOCIATE-RQ with every presentation
context our storage classes could need fits in a fraction of it."""

UNRECOGNIZED_PDU = 0x01
UNEXPECTED_PDU = 0x02
INVALID_PDU_PARAMETER_VALUE = 0x06
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
Buffer: TypeAlias = bytes | bytearray | memoryview


def largest_p_data(maximum_pdu_size: int = MAXIMUM_PDU_SIZE) -> int:
    """The most a P-DATA-TF may declare: our maximum PDU length (PS3.8 D.1) and one PDV item header,
    which some senders count outside it."""
    return maximum_pdu_size + PDV_ITEM_HEADER_BYTES


def a_abort(reason: int) -> bytes:
    """An A-ABORT PDU from the service provider (source 2) with ``reason`` (PS3.8 9.3.8)."""
    return struct.pack(">BBIBBBB", A_ABORT, 0, 4, 0, 0, 0x02, reason)


@dataclass(frozen=True)
class Refused:
    """A PDU header the framing refuses: what it declared, what is allowed, the A-ABORT reason."""

    pdu_type: int
    declared: int
    allowed: int
    reason: int
    detail: str = ""

    def describe(self) -> str:
        if self.detail:
            return self.detail
        if self.reason == UNRECOGNIZED_PDU:
            return f"unknown PDU type 0x{self.pdu_type:02X}"
        if self.reason == UNEXPECTED_PDU:
            return f"PDU type 0x{self.pdu_type:02X} where the protocol state allows none"
        return f"PDU type 0x{self.pdu_type:02X} declaring {self.declared} bytes (at most {self.allowed})"


class PduFraming:
    """Where the received byte stream is in its PDUs; refuses a header before its body is read."""

    __slots__ = ("_header", "_remaining", "associated", "largest_p_data", "pdu_started")

    def __init__(self, largest_p_data: int) -> None:
        self._header = bytearray()
        self._remaining = 0
        self.associated = False
        self.largest_p_data = largest_p_data
        self.pdu_started: float | None = None
        """``time.monotonic()`` when the PDU being received began to arrive; None between PDUs."""

    def allowed(self, pdu_type: int) -> tuple[int, int]:
        """The most a PDU of ``pdu_type`` may declare now, and the A-ABORT reason if it declares more."""
        if pdu_type not in KNOWN_PDU_TYPES:
            return -1, UNRECOGNIZED_PDU
        if pdu_type == P_DATA_TF:
            return (self.largest_p_data, INVALID_PDU_PARAMETER_VALUE) if self.associated else (-1, UNEXPECTED_PDU)
        return LARGEST_OTHER_PDU, INVALID_PDU_PARAMETER_VALUE

    def feed(self, data: Buffer) -> Refused | None:
        """Follow ``data``, the next bytes received; a refused header stops the walk."""
        view = memoryview(data)
        position, end = 0, len(view)
        while position < end:
            if self._remaining:
                taken = min(self._remaining, end - position)
                self._remaining -= taken
                position += taken
                if not self._remaining:
                    self.pdu_started = None
                continue
            if not self._header:
                self.pdu_started = time.monotonic()
            wanted = HEADER_BYTES - len(self._header)
            self._header += view[position : position + wanted]
            position += wanted
            if len(self._header) < HEADER_BYTES:
                break
            pdu_type, _, length = struct.unpack(">BBI", self._header)
            self._header.clear()
            allowed, reason = self.allowed(pdu_type)
            if length > allowed:
                return Refused(pdu_type, length, allowed, reason)
            self._remaining = length
            if not length:
                self.pdu_started = None
        return None

    @property
    def between_pdus(self) -> bool:
        return not self._remaining and not self._header


class _Guarded:
    """What :class:`GuardedSocket` and :class:`GuardedSSLSocket` add to their socket class."""

    _framing: PduFraming
    _connection: Connection
    _quick_ack: bool
    _answered: bool
    _read_ahead: bytearray
    sending_since: float | None
    """``time.monotonic()`` when the send under way began; None when none is."""

    def attach(self, connection: Connection, largest_p_data: int) -> None:
        """Start watching; called once, right after the socket object is made."""
        self._framing = PduFraming(largest_p_data)
        self._connection = connection
        self._quick_ack = _QUICKACK is not None and not isinstance(self, ssl.SSLSocket)
        self._answered = False
        self._read_ahead = bytearray()
        self.sending_since = None

    @property
    def framing(self) -> PduFraming:
        return self._framing

    @property
    def connection(self) -> Connection:
        return self._connection

    def refused(self, refused: Refused) -> None:
        """Answer with an A-ABORT and shut the connection (see :class:`Refused`)."""
        self._connection.refuse(refused)

    def _received(self, data: Buffer) -> bool:
        """Follow received bytes; True when the connection was refused (the read reports it closed)."""
        refused = self._framing.feed(data)
        if refused is not None:
            self._connection.refuse(refused)
            return True
        if self._quick_ack and self._framing.pdu_started is None:
            try:  # a whole PDU is in: acknowledge at once, not after the delayed-ACK timer
                socket.socket.setsockopt(cast(socket.socket, self), socket.IPPROTO_TCP, cast(int, _QUICKACK), 1)
            except OSError:
                pass
        return False

    # --- before pynetdicom reads: the first PDU, looked at without taking it away ------------------

    def read_ahead(self, wanted: int) -> bytes | None:
        """The first ``wanted`` bytes of the stream, as far as they came, without waiting and without
        taking them from what pynetdicom will read; None at the end of the stream.  Raises
        ``BlockingIOError`` (``ssl.SSLWantReadError`` under TLS) when nothing more is there yet."""
        data = socket.socket.recv(cast(socket.socket, self), wanted, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return data or None

    def read_ahead_so_far(self) -> bytes:
        return b""

    # --- pynetdicom's reads and sends ---------------------------------------------------------------

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        if self._read_ahead:
            return self._take_read_ahead(args[0] if args else kwargs.get("bufsize", kwargs.get("buflen", 1024)))
        data: bytes = super().recv(*args, **kwargs)  # type: ignore[misc]
        return b"" if data and self._received(data) else data

    def recv_into(self, buffer: Any, *args: Any, **kwargs: Any) -> int:
        if self._read_ahead:
            with memoryview(buffer) as view:
                size = (args[0] if args else kwargs.get("nbytes")) or len(view)
                data = self._take_read_ahead(size)
                view[: len(data)] = data
                return len(data)
        received: int = super().recv_into(buffer, *args, **kwargs)  # type: ignore[misc]
        if received and self._received(memoryview(buffer)[:received]):
            return 0
        return received

    def _take_read_ahead(self, size: int) -> bytes:
        """Hand back bytes read ahead (and followed then), before anything new is read."""
        data = bytes(self._read_ahead[:size])
        del self._read_ahead[:size]
        return data

    def _sending(self, data: Buffer) -> None:
        if not self._answered:
            self._answered = True
            accepted = memoryview(data)[:1].tobytes() == bytes((A_ASSOCIATE_AC,))
            self._framing.associated = accepted
            self._connection.answered(accepted)
        self.sending_since = time.monotonic()

    def send(self, data: Any, *args: Any) -> int:
        self._sending(data)
        try:
            sent: int = super().send(data, *args)  # type: ignore[misc]
        finally:
            self.sending_since = None
        return sent

    def sendall(self, data: Any, *args: Any) -> None:
        self._sending(data)
        try:
            super().sendall(data, *args)  # type: ignore[misc]
        finally:
            self.sending_since = None

    def close(self) -> None:
        super().close()  # type: ignore[misc]
        connection = getattr(self, "_connection", None)
        if connection is not None:
            connection.closed()


class GuardedSocket(_Guarded, socket.socket):
    """A plain TCP connection of the listener (``TCP_QUICKACK`` re-armed after each whole PDU on Linux)."""


class GuardedSSLSocket(_Guarded, ssl.SSLSocket):
    """A DICOM TLS connection of the listener (the framing is that of the decrypted bytes).

    TLS cannot peek, so the first PDU is read ahead and handed back to pynetdicom's first reads;
    ``pending`` counts it, which is how pynetdicom learns that a TLS socket has data to read.
    """

    def read_ahead(self, wanted: int) -> bytes | None:
        missing = wanted - len(self._read_ahead)
        if missing > 0:
            self.setblocking(False)
            try:
                data = ssl.SSLSocket.recv(self, missing)
            finally:
                self.setblocking(True)
            if not data or self._received(data):
                return None
            self._read_ahead += data
        return bytes(self._read_ahead[:wanted])

    def read_ahead_so_far(self) -> bytes:
        return bytes(self._read_ahead)

    def pending(self) -> int:
        return len(self._read_ahead) + super().pending()


__all__ = [
    "LARGEST_OTHER_PDU",
    "GuardedSSLSocket",
    "GuardedSocket",
    "PduFraming",
    "Refused",
    "a_abort",
    "largest_p_data",
]
