"""A DICOM upper layer client written by hand on a plain socket, so tests can lie in every field.

pynetdicom (and dcmtk) refuse to send what these tests need to send: commands whose UIDs hold
``../``, a C-STORE whose SOP class is not the presentation context's, P-DATA before the
association, PDUs whose length fields are wrong.  PS3.8 section 9.3 has the PDU layouts; the
command set (PS3.7 section 9.3.1) is encoded Implicit VR Little Endian by hand, so no library
validates the values on the way out.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.9.7433.1.99"

A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07


def item(kind: int, payload: bytes) -> bytes:
    """A variable item of an association PDU: type, reserved, 2-byte length, payload."""
    return struct.pack(">BBH", kind, 0, len(payload)) + payload


def pdu(kind: int, body: bytes, length: int | None = None) -> bytes:
    """A PDU: type, reserved, 4-byte length (``length`` lies about it), body."""
    return struct.pack(">BBI", kind, 0, len(body) if length is None else length) + body


@dataclass(frozen=True)
class Context:
    id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = (EXPLICIT_LE,)


def presentation_context(cx: Context) -> bytes:
    syntaxes = b"".join(item(0x40, ts.encode()) for ts in cx.transfer_syntaxes)
    return item(0x20, struct.pack(">BBBB", cx.id, 0, 0, 0) + item(0x30, cx.abstract_syntax.encode()) + syntaxes)


def user_information(max_pdu: int = 16384, implementation_uid: str = IMPLEMENTATION_UID) -> bytes:
    return item(0x50, item(0x51, struct.pack(">I", max_pdu)) + item(0x52, implementation_uid.encode()))


def associate_rq(
    contexts: list[Context] | None = None,
    *,
    called: bytes = b"RADASSIST",
    calling: bytes = b"PYSCU",
    max_pdu: int = 16384,
    protocol: int = 1,
    user_info: bytes | None = None,
    raw_contexts: bytes | None = None,
) -> bytes:
    """A valid A-ASSOCIATE-RQ (PS3.8 9.3.2) unless a keyword asks for a particular lie."""
    contexts = contexts if contexts is not None else [Context(1, VERIFICATION)]
    items = item(0x10, APPLICATION_CONTEXT.encode())
    items += raw_contexts if raw_contexts is not None else b"".join(presentation_context(c) for c in contexts)
    items += user_information(max_pdu) if user_info is None else user_info
    header = struct.pack(">HH16s16s32s", protocol, 0, called.ljust(16)[:16], calling.ljust(16)[:16], b"\x00" * 32)
    return pdu(A_ASSOCIATE_RQ, header + items)


def _element(group: int, elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode("latin-1", "replace")
    return raw + (b"\x00" if len(raw) % 2 else b"")


def command_set(fields: list[tuple[int, bytes]]) -> bytes:
    """Group 0000 elements (implicit VR LE) with the group length in front."""
    body = b"".join(_element(0x0000, elem, value) for elem, value in sorted(fields))
    return _element(0x0000, 0x0000, struct.pack("<I", len(body))) + body


def c_store_rq(sop_class: str, sop_instance: str, message_id: int = 1, with_data: bool = True) -> bytes:
    return command_set([
        (0x0002, _uid(sop_class)),
        (0x0100, struct.pack("<H", 0x0001)),
        (0x0110, struct.pack("<H", message_id)),
        (0x0700, struct.pack("<H", 0)),
        (0x0800, struct.pack("<H", 0x0000 if with_data else 0x0101)),
        (0x1000, _uid(sop_instance)),
    ])


def c_echo_rq(message_id: int = 1) -> bytes:
    return command_set([
        (0x0002, _uid(VERIFICATION)),
        (0x0100, struct.pack("<H", 0x0030)),
        (0x0110, struct.pack("<H", message_id)),
        (0x0800, struct.pack("<H", 0x0101)),
    ])


def pdv(context_id: int, data: bytes, *, command: bool, last: bool = True, length: int | None = None) -> bytes:
    """One presentation data value item: length, context id, message control header, fragment."""
    header = (0x01 if command else 0x00) | (0x02 if last else 0x00)
    n = len(data) + 2 if length is None else length
    return struct.pack(">IBB", n, context_id, header) + data


def p_data(*pdvs: bytes) -> bytes:
    return pdu(P_DATA_TF, b"".join(pdvs))


def fragments(context_id: int, data: bytes, *, command: bool, size: int = 16000) -> bytes:
    """``data`` as P-DATA-TF PDUs of at most ``size`` bytes of fragment each."""
    chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return b"".join(
        p_data(pdv(context_id, chunk, command=command, last=i == len(chunks) - 1)) for i, chunk in enumerate(chunks)
    )


RELEASE_RQ = pdu(A_RELEASE_RQ, b"\x00" * 4)
ABORT = pdu(A_ABORT, b"\x00\x00\x00\x00")


@dataclass
class Reply:
    """What the node sent back: PDU types in order, and the DIMSE status when a response came."""

    pdus: list[int] = field(default_factory=list)
    status: int | None = None
    accepted_contexts: dict[int, int] = field(default_factory=dict)
    """context id -> result (0 acceptance) from an A-ASSOCIATE-AC."""
    closed: bool = False

    @property
    def refused(self) -> bool:
        """The node said no at the association level (reject or abort) or closed the connection."""
        return A_ASSOCIATE_RJ in self.pdus or A_ABORT in self.pdus or self.closed


def _read_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    out = b""
    while len(out) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionResetError("closed")
        out += chunk
    return out


def read_pdu(sock: socket.socket, timeout: float) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    kind, _, length = struct.unpack(">BBI", _read_exact(sock, 6, deadline))
    return kind, _read_exact(sock, length, deadline)


def _status_of(command: bytes) -> int | None:
    offset = 0
    while offset + 8 <= len(command):
        group, elem, length = struct.unpack("<HHI", command[offset : offset + 8])
        value = command[offset + 8 : offset + 8 + length]
        if (group, elem) == (0x0000, 0x0900) and len(value) == 2:
            return int(struct.unpack("<H", value)[0])
        offset += 8 + length
    return None


def _ac_contexts(body: bytes) -> dict[int, int]:
    out: dict[int, int] = {}
    offset = 68
    while offset + 4 <= len(body):
        kind, _, length = struct.unpack(">BBH", body[offset : offset + 4])
        if kind == 0x21 and length >= 4:
            out[body[offset + 4]] = body[offset + 6]
        offset += 4 + length
    return out


def exchange(sock: socket.socket, payload: bytes, *, timeout: float = 3.0, until_status: bool = False) -> Reply:
    """Send ``payload``; read PDUs until the node closes, aborts, rejects, answers a DIMSE status
    (with ``until_status``), or goes quiet for ``timeout`` seconds."""
    reply = Reply()
    try:
        sock.sendall(payload)
    except OSError:
        reply.closed = True
        return reply
    command = b""
    while True:
        try:
            kind, body = read_pdu(sock, timeout)
        except TimeoutError:
            return reply
        except OSError:
            reply.closed = True
            return reply
        reply.pdus.append(kind)
        if kind == A_ASSOCIATE_AC:
            reply.accepted_contexts = _ac_contexts(body)
            if not until_status:
                return reply
        elif kind in (A_ASSOCIATE_RJ, A_ABORT, A_RELEASE_RP):
            return reply
        elif kind == P_DATA_TF:
            offset = 0
            while offset + 6 <= len(body):
                (n,) = struct.unpack(">I", body[offset : offset + 4])
                header = body[offset + 5]
                fragment = body[offset + 6 : offset + 4 + n]
                offset += 4 + n
                if header & 0x01:
                    command += fragment
                    if header & 0x02:
                        reply.status = _status_of(command)
                        return reply


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def associate(sock: socket.socket, contexts: list[Context], *, timeout: float = 3.0, **kwargs: object) -> Reply:
    return exchange(sock, associate_rq(contexts, **kwargs), timeout=timeout)  # type: ignore[arg-type]


def c_store(
    sock: socket.socket, context_id: int, sop_class: str, sop_instance: str, data: bytes, *, timeout: float = 10.0
) -> Reply:
    """Send one C-STORE (command then data set fragments) and wait for its response."""
    payload = fragments(context_id, c_store_rq(sop_class, sop_instance), command=True)
    payload += fragments(context_id, data, command=False)
    return exchange(sock, payload, timeout=timeout, until_status=True)


def release(sock: socket.socket) -> None:
    try:
        exchange(sock, RELEASE_RQ, timeout=2.0)
    except OSError:
        pass
