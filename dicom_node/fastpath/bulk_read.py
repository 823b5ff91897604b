"""Association sockets that read a PDU in as few ``recv`` calls as the kernel allows.

pynetdicom's ``AssociationSocket.recv`` reads at most 4 KiB per call and appends each piece to a
bytearray: a 256 KiB P-DATA-TF costs 64 system calls and as many copies.  :class:`BulkReadSocket`
reads a PDU into one buffer of the PDU's size instead.

A buffer is sized by a length the peer declared, so it is preallocated only up to
:data:`LARGEST_PREALLOCATED`; the connection guard (:mod:`dicom_node.pdu_framing`) aborts an
association whose PDU declares more than the protocol allows before this read is ever asked for,
and a longer read that reaches this class anyway goes the library's way, growing only as bytes
arrive.
"""

from __future__ import annotations

import socket
from typing import cast

from pynetdicom.transport import AssociationSocket

from dicom_node.ae import MAXIMUM_PDU_SIZE
from dicom_node.pdu_framing import LARGEST_OTHER_PDU

LARGEST_PREALLOCATED = max(MAXIMUM_PDU_SIZE + 6, LARGEST_OTHER_PDU)
"""The largest read given a buffer of its full size up front: the largest PDU the guard lets through."""


class BulkReadSocket(AssociationSocket):
    """pynetdicom's association socket with a bulk ``recv``; it adds no state, so an
    ``AssociationSocket`` the library built can be re-classed to it."""

    def recv(self, nr_bytes: int) -> bytearray:
        if nr_bytes > LARGEST_PREALLOCATED:
            return super().recv(nr_bytes)
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
        return buffer


__all__ = ["LARGEST_PREALLOCATED", "BulkReadSocket"]
