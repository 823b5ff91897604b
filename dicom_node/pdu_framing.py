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

    def describe(self) -> str:
        if self.reason == UNRECOGNIZED_PDU:
            return f"unknown PDU type 0x{self.pdu_type:02X}"
        if self.reason == UNEXPECTED_PDU:
            return f"PDU type 0x{self.pdu_type:02X} before the association was accepted"
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
    sending_since: float | None
    """``time.monotonic()`` when the send under way began; None when none is."""

    def attach(self, connection: Connection, largest_p_data: int) -> None:
        """Start watching; called once, right after the socket object is made."""
        self._framing = PduFraming(largest_p_data)
        self._connection = connection
        self._quick_ack = _QUICKACK is not None and not isinstance(self, ssl.SSLSocket)
        self._answered = False
        self.sending_since = None

    @property
    def framing(self) -> PduFraming:
        return self._framing

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

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = super().recv(*args, **kwargs)  # type: ignore[misc]
        return b"" if data and self._received(data) else data

    def recv_into(self, buffer: Any, *args: Any, **kwargs: Any) -> int:
        received: int = super().recv_into(buffer, *args, **kwargs)  # type: ignore[misc]
        if received and self._received(memoryview(buffer)[:received]):
            return 0
        return received

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
    """A DICOM TLS connection of the listener (the framing is that of the decrypted bytes)."""


__all__ = [
    "LARGEST_OTHER_PDU",
    "GuardedSSLSocket",
    "GuardedSocket",
    "PduFraming",
    "Refused",
    "a_abort",
    "largest_p_data",
]
