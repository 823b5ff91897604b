"""A connection reaches pynetdicom only once its first PDU is a whole, decodable A-ASSOCIATE-RQ.

Until then it costs one waiting thread and no association: pynetdicom builds an association (two
threads, its reactor polling) for every connection it is handed, and waits the whole ARTIM time
for a request that never comes.  Here the connection's own request thread waits for the first PDU
(PS3.8 Sta2, "awaiting A-ASSOCIATE-RQ"), within the ARTIM time that
:class:`~dicom_node.connections.Connections` enforces, and applies Sta2's rules itself:

- an A-ASSOCIATE-RQ of at most 64 KiB that pynetdicom's own PDU classes decode into a primitive:
  the connection goes to pynetdicom, the request still unread (peeked on a plain socket, read
  ahead and handed back on a TLS one);
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
from typing import cast

from pynetdicom.pdu import A_ASSOCIATE_RQ as AssociateRequestPdu

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


def await_association_request(sock: _Guarded, deadline: float) -> bool:
    """Wait until ``sock`` holds a whole, decodable A-ASSOCIATE-RQ; False when the connection must
    close (it was refused with an A-ABORT, the peer hung up or aborted, or ``deadline`` passed)."""
    wanted = HEADER_BYTES
    pause = _FIRST_WAIT_S
    while True:
        received = _look(sock, wanted)
        if received is None:
            return False
        if wanted == HEADER_BYTES and len(received) >= HEADER_BYTES:
            pdu_type, _, length = struct.unpack(">BBI", received[:HEADER_BYTES])
            refused = _refusal(sock, pdu_type, length)
            if refused is not None:
                sock.refused(refused)
                return False
            if pdu_type == A_ABORT:
                return False
            wanted = HEADER_BYTES + length
        if len(received) >= wanted:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if received or isinstance(sock, ssl.SSLSocket):
            time.sleep(min(pause, remaining))  # part of it is here: look again soon, then less often
            pause = min(pause * 2, _LONGEST_WAIT_S)
        else:
            select.select([cast(socket.socket, sock)], [], [], remaining)  # nothing yet: sleep until something comes
    if not _decodes(received[:wanted]):
        sock.refused(Refused(A_ASSOCIATE_RQ, wanted, wanted, INVALID_PDU_PARAMETER_VALUE, "an undecodable A-ASSOCIATE-RQ"))
        return False
    return True


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


def _decodes(data: bytes) -> bool:
    """Whether pynetdicom can decode ``data`` and build its A-ASSOCIATE primitive (what it does on
    Sta2 + Evt6; an exception there would end its reactor thread without an answer)."""
    try:
        pdu = AssociateRequestPdu()
        pdu.decode(data)
        pdu.to_primitive()
    except Exception:  # noqa: BLE001 - whatever the peer's bytes provoke in the decoder
        return False
    return True


__all__ = ["await_association_request"]
