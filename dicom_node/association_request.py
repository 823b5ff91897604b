"""A connection reaches pynetdicom only once its first PDU is a whole, decodable A-ASSOCIATE-RQ.

Until then it costs one waiting thread and no association: pynetdicom builds an association (two
threads, its reactor polling) for every connection it is handed, and waits the whole ARTIM time
for a request that never comes.  Here the connection's own request thread waits for the first PDU
(PS3.8 Sta2, "awaiting A-ASSOCIATE-RQ"), within the ARTIM time that
:class:`~dicom_node.connections.Connections` enforces, and applies Sta2's rules itself:

- an A-ASSOCIATE-RQ of at most 64 KiB that pynetdicom's own PDU classes decode into a primitive:
  the connection goes to pynetdicom, the request still unread (peeked on a plain socket, read
  ahead and handed back on a TLS one), with what was decoded (:class:`DecodedRequest`), which
  the fast path hands to pynetdicom so that it need not decode the same bytes again
  (:mod:`dicom_node.fastpath.first_request`);
- an A-ABORT: the connection is closed (AA-2);
- any other PDU, a request that does not decode (an even presentation context ID, an item
  running past its PDU) or a length beyond the bound: an A-ABORT (source: service provider,
  PS3.8 Table 9-26) and the connection is closed (AA-1);
- nothing whole before the ARTIM time, or the peer hung up: the connection is closed.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from typing import cast

from pynetdicom.pdu import A_ASSOCIATE_RQ as AssociateRequestPdu
from pynetdicom.pdu_primitives import A_ASSOCIATE

from dicom_node.pdu_framing import (
    A_ABORT,
    A_ASSOCIATE_RQ,
    HEADER_BYTES,
    INVALID_PDU_PARAMETER_VALUE,
    UNEXPECTED_PDU,
    Refused,
    _Guarded,
)

_FIRST_WAIT_S = 0.002
_LONGEST_WAIT_S = 0.1
"""Waits between looks at a request that arrives in pieces grow from the first to this."""


@dataclass(frozen=True)
class DecodedRequest:
    """An A-ASSOCIATE-RQ as pynetdicom decodes it: its bytes, its PDU and the A-ASSOCIATE primitive
    built from that (what pynetdicom does on Sta2 + Evt6)."""

    data: bytes
    pdu: AssociateRequestPdu
    primitive: A_ASSOCIATE

    @classmethod
    def of(cls, data: bytes) -> DecodedRequest:
        """Decode ``data``; raises whatever the peer's bytes provoke in pynetdicom's decoder."""
        pdu = AssociateRequestPdu()
        pdu.decode(data)
        return cls(data, pdu, pdu.to_primitive())


def await_association_request(sock: _Guarded, deadline: float) -> DecodedRequest | None:
    """Wait until ``sock`` holds a whole, decodable A-ASSOCIATE-RQ and return it, decoded; None
    when the connection must close (it was refused with an A-ABORT, the peer hung up or aborted,
    or ``deadline`` passed)."""
    wanted = HEADER_BYTES
    pause = _FIRST_WAIT_S
    while True:
        received = _look(sock, wanted)
        if received is None:
            return None
        if wanted == HEADER_BYTES and len(received) >= HEADER_BYTES:
            pdu_type, _, length = struct.unpack(">BBI", received[:HEADER_BYTES])
            refused = _refusal(sock, pdu_type, length)
            if refused is not None:
                sock.refused(refused)
                return None
            if pdu_type == A_ABORT:
                return None
            wanted = HEADER_BYTES + length
        if len(received) >= wanted:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if received or isinstance(sock, ssl.SSLSocket):
            time.sleep(min(pause, remaining))  # part of it is here: look again soon, then less often
            pause = min(pause * 2, _LONGEST_WAIT_S)
        else:
            select.select([cast(socket.socket, sock)], [], [], remaining)  # nothing yet: sleep until something comes
    decoded = _decoded(received[:wanted])
    if decoded is None:
        sock.refused(Refused(A_ASSOCIATE_RQ, wanted, wanted, INVALID_PDU_PARAMETER_VALUE, "an undecodable A-ASSOCIATE-RQ"))
    return decoded


def _refusal(sock: _Guarded, pdu_type: int, length: int) -> Refused | None:
    allowed, reason = sock.framing.allowed(pdu_type)
    if length > allowed:
        return Refused(pdu_type, length, allowed, reason)
    if pdu_type not in (A_ASSOCIATE_RQ, A_ABORT):
        return Refused(pdu_type, length, allowed, UNEXPECTED_PDU)
    return None


def _look(sock: _Guarded, wanted: int) -> bytes | None:
    """The first ``wanted`` bytes received so far (fewer if not all came), or None at end of stream."""
    try:
        return sock.read_ahead(wanted)
    except (BlockingIOError, ssl.SSLWantReadError):
        return sock.read_ahead_so_far()
    except OSError:
        return None


def _decoded(data: bytes) -> DecodedRequest | None:
    """The request as pynetdicom decodes it and builds its A-ASSOCIATE primitive (what it does on
    Sta2 + Evt6); None when that fails (an exception there would end its reactor thread without
    an answer)."""
    try:
        return DecodedRequest.of(data)
    except Exception:  # noqa: BLE001 - whatever the peer's bytes provoke in the decoder
        return None


__all__ = ["DecodedRequest", "await_association_request"]
