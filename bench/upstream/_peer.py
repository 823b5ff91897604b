"""What both reproductions share: a free port and an A-ASSOCIATE-RQ written byte by byte (PS3.8 9.3.2).

Only the standard library: the reproductions run against any pynetdicom checkout.
"""

from __future__ import annotations

import socket
import struct


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def associate_rq(context_id: int = 1, called: bytes = b"ANY-SCP", calling: bytes = b"REPRO") -> bytes:
    """An A-ASSOCIATE-RQ proposing Verification in Implicit VR Little Endian, with ``context_id``."""

    def item(kind: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", kind, 0, len(payload)) + payload

    application = item(0x10, b"1.2.840.10008.3.1.1.1")
    context = item(0x20, struct.pack(">BBBB", context_id, 0, 0, 0)
                   + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.826.0.1.3680043.9.7433.1"))
    body = struct.pack(">HH16s16s32s", 1, 0, called.ljust(16), calling.ljust(16), b"\x00" * 32)
    body += application + context + user
    return struct.pack(">BBI", 0x01, 0, len(body)) + body
