"""A hostile network against the running listener: no slot and no memory without an association.

Each test runs twice, with the pynetdicom fast path and with stock pynetdicom: the protections
live below pynetdicom (dicom_node.connections, dicom_node.pdu_framing) and must hold in both.

- Silent, trickling and 8-byte sockets never take an association slot: with four slots and fifty
  such sockets open, dcmtk's echoscu from an allowed AE still succeeds; past the cap on connections
  still negotiating, the oldest of them is closed to make room.
- A connection without an association is closed at the ARTIM time, also one stuck in a partial
  PDU header and a silent client of the TLS port (whose handshake never holds the accepting thread).
- A PDU that declares more than the protocol state allows (an A-ASSOCIATE-RQ of 512 MiB, a
  P-DATA-TF of 512 MiB on an established association) gets an A-ABORT before anything is allocated:
  the listener's resident memory (from /proc) grows by less than 64 MiB.
- A P-DATA-TF stalled half-way is closed after the network timeout.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification

from radassist.config import Settings
from tests.conftest import free_port, wait_for_port, wait_until
from tests.node.conftest import REPO, Node, listener_env
from tests.node.corpus import associate_rq
from tests.node.dcmtk import TlsPeer, echo, output

ABORT_HEADER = struct.pack(">BBI", 0x07, 0, 4)
DECLARED = 512 * 1024 * 1024
RSS_BOUND = 64 * 1024 * 1024


@pytest.fixture(params=[True, False], ids=["fast-path", "stock"])
def fast_path(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # no TIME_WAIT pile-up
    return sock


def _closed_by_peer(sock: socket.socket, timeout: float) -> bytes | None:
    """Everything the listener sent until it closed the connection, or None if it is still open."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


@contextlib.contextmanager
def _trickling(sockets: list[socket.socket], payload: bytes, every: float = 0.3) -> Iterator[None]:
    """Send ``payload`` one byte at a time to each socket, every ``every`` seconds, until the block ends."""
    stop = threading.Event()

    def drip() -> None:
        position = 0
        while not stop.wait(every):
            byte = payload[position % len(payload) : position % len(payload) + 1]
            position += 1
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(byte)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _associate(port: int) -> Association:
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title="RADASSIST")


def test_fifty_hostile_sockets_take_no_slot_and_keep_no_sender_out(
    sqlite_settings: Settings, start_node: Callable[..., Node], fast_path: bool
) -> None:
    node = start_node(sqlite_settings, max_associations=4, pynetdicom_fast_path=fast_path)
    rq = associate_rq(calling=b"PYSCU")
    hostile = [_connect(node.port) for _ in range(50)]
    try:
        for sock in hostile[:20]:
            sock.sendall(rq[:8])  # 8 bytes of a PDU header and a length: the classic slot holder
        with _trickling(hostile[20:35], rq):  # an A-ASSOCIATE-RQ, one byte at a time; the rest stay silent
            wait_until(lambda: node.server.connections.pending_count == 50, timeout=15)
            result = echo(node.port, calling_ae="PYSCU")
            assert result.returncode == 0, output(result)
            registry = node.server.shared.registry
            assert registry is not None
            # the echo's own slot is freed just after echoscu exits; the fifty never take one
            wait_until(lambda: registry.slots_in_use == 0, timeout=10)
            # The four slots are for associations: four held open, a fifth is refused (transient) ...
            held = [_associate(node.port) for _ in range(4)]
            try:
                assert all(a.is_established for a in held)
                assert "Rejected Transient" in output(echo(node.port, calling_ae="PYSCU"))
            finally:
                held[0].release()
            # ... and a released slot is free again, with all fifty hostile sockets still open.
            wait_until(lambda: echo(node.port, calling_ae="PYSCU").returncode == 0, timeout=15)
            for association in held[1:]:
                association.release()
            assert node.server.connections.pending_count == 50
    finally:
        for sock in hostile:
            sock.close()


def test_past_the_pending_cap_the_oldest_negotiating_connection_is_closed(
    sqlite_settings: Settings, start_node: Callable[..., Node], fast_path: bool
) -> None:
    node = start_node(sqlite_settings, max_pending_connections=5, pynetdicom_fast_path=fast_path)
    silent = []
    try:
        for _ in range(5):
            silent.append(_connect(node.port))
            wait_until(lambda: node.server.connections.pending_count == len(silent), timeout=10)
        result = echo(node.port)  # the sixth connection: the oldest silent one makes room
        assert result.returncode == 0, output(result)
        assert _closed_by_peer(silent[0], timeout=10) is not None
        assert all(_closed_by_peer(sock, timeout=0.2) is None for sock in silent[1:])  # still open
    finally:
        for sock in silent:
            sock.close()


def test_connections_without_an_association_are_closed_at_the_artim_time(
    sqlite_settings: Settings, start_node: Callable[..., Node], fast_path: bool
) -> None:
    artim = 2.0
    node = start_node(sqlite_settings, artim_timeout_seconds=artim, pynetdicom_fast_path=fast_path)
    silent, partial, trickling = (_connect(node.port) for _ in range(3))
    partial.sendall(associate_rq()[:8])
    opened = time.monotonic()
    with _trickling([trickling], associate_rq(), every=0.2):
        for sock in (silent, partial, trickling):
            assert _closed_by_peer(sock, timeout=artim + 10) is not None
            sock.close()
    assert time.monotonic() - opened >= artim - 0.5  # not before the ARTIM time
    wait_until(lambda: node.server.connections.open_count == 0, timeout=10)
    assert echo(node.port).returncode == 0


def test_connections_that_hang_up_or_send_no_request_leave_no_association_behind(
    sqlite_settings: Settings, start_node: Callable[..., Node], fast_path: bool
) -> None:
    """pynetdicom builds an association (two threads) only for a whole A-ASSOCIATE-RQ: a port scan,
    a health check that connects and closes, or garbage leaves nothing to wait out the ARTIM time."""
    node = start_node(sqlite_settings, pynetdicom_fast_path=fast_path)
    for n in range(60):
        with _connect(node.port) as sock:
            if n % 2:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    wait_until(lambda: node.server.connections.open_count == 0, timeout=15)
    assert node.server.active_associations == []
    assert echo(node.port).returncode == 0


def test_a_request_pynetdicom_cannot_decode_is_aborted_at_once(
    sqlite_settings: Settings, start_node: Callable[..., Node], fast_path: bool
) -> None:
    """An even presentation context ID ends pynetdicom's reactor thread without an answer (its bug);
    the listener answers with an A-ABORT before pynetdicom sees the request."""
    node = start_node(sqlite_settings, pynetdicom_fast_path=fast_path)
    rq = bytearray(associate_rq())
    assert rq[99] == 0x20  # the presentation context item; its ID follows the item header
    rq[103] = 2
    with _connect(node.port) as sock:
        sock.sendall(bytes(rq))
        received = _closed_by_peer(sock, timeout=5)  # well before the ARTIM time (30 s)
    assert received == ABORT_HEADER + b"\x00\x00\x02\x06"
    assert node.server.active_associations == []


def test_a_silent_client_of_the_tls_port_holds_nothing(
    sqlite_settings: Settings, start_node: Callable[..., Node], pki: Path, fast_path: bool
) -> None:
    tls_port = free_port()
    node = start_node(
        sqlite_settings, tls_port=tls_port, tls_cert_file=str(pki / "server.pem"), tls_key_file=str(pki / "server.key"),
        artim_timeout_seconds=5.0, pynetdicom_fast_path=fast_path,
    )  # fmt: skip
    wait_for_port(tls_port)
    silent = [_connect(tls_port) for _ in range(3)]  # TCP only: no ClientHello ever comes
    try:
        wait_until(lambda: node.server.connections.pending_count == 3, timeout=10)
        result = echo(tls_port, tls=TlsPeer(ca=pki / "ca.pem"))
        assert result.returncode == 0, output(result)
        assert node.server.connections.pending_count == 3  # served while they wait, not after ARTIM
        for sock in silent:
            assert _closed_by_peer(sock, timeout=12) is not None
    finally:
        for sock in silent:
            sock.close()


def test_a_p_data_stalled_half_way_is_closed_after_the_network_timeout(
    sqlite_settings: Settings, start_node: Callable[..., Node], fast_path: bool
) -> None:
    node = start_node(sqlite_settings, network_timeout_seconds=2.0, pynetdicom_fast_path=fast_path)
    sock = _connect(node.port)
    try:
        sock.sendall(associate_rq(calling=b"PYSCU"))
        assert sock.recv(1) == b"\x02"  # A-ASSOCIATE-AC
        sock.sendall(struct.pack(">BBI", 0x04, 0, 100) + b"\x00\x00")  # 8 of 106 bytes, then nothing
        assert _closed_by_peer(sock, timeout=15) is not None
    finally:
        sock.close()
    assert echo(node.port).returncode == 0


# --- declared-huge PDUs against a listener process whose memory is measured -------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _aborted(sock: socket.socket) -> bytes:
    """The A-ABORT the listener sent before closing: its source and reason bytes."""
    received = _closed_by_peer(sock, timeout=10)
    assert received is not None, "the connection stayed open"
    assert ABORT_HEADER in received, received[:32]
    abort = received[received.index(ABORT_HEADER) :]
    return abort[8:10]


def _huge_rq(port: int) -> bytes:
    with _connect(port) as sock:
        sock.sendall(struct.pack(">BBI", 0x01, 0, DECLARED) + b"\x00\x01")  # 8 bytes sent
        return _aborted(sock)


def _huge_p_data(port: int) -> bytes:
    with _connect(port) as sock:
        sock.sendall(associate_rq())
        assert sock.recv(1) == b"\x02"  # A-ASSOCIATE-AC
        sock.sendall(struct.pack(">BBI", 0x04, 0, DECLARED) + b"\x00\x00")
        return _aborted(sock)


def _p_data_before_association(port: int) -> bytes:
    with _connect(port) as sock:
        sock.sendall(struct.pack(">BBI", 0x04, 0, 1000) + b"\x00\x00")
        return _aborted(sock)


def test_declared_huge_pdus_are_aborted_before_any_allocation(
    node_database: str, tmp_path: Path, fast_path: bool
) -> None:
    port = free_port()
    env = listener_env(tmp_path, node_database, port, RADASSIST_DICOM_PYNETDICOM_FAST_PATH=str(fast_path).lower())
    proc = subprocess.Popen([sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port)
        assert echo(port).returncode == 0  # warm: the first association builds what every one uses
        before = _rss(proc.pid)
        for _ in range(4):
            assert _huge_rq(port) == b"\x02\x06"  # service provider, invalid-PDU-parameter value
            assert _huge_p_data(port) == b"\x02\x06"
        assert _p_data_before_association(port) == b"\x02\x02"  # unexpected PDU
        grown = _rss(proc.pid) - before
        print(f"\nlistener RSS growth after 8 PDUs declaring 512 MiB ({'fast path' if fast_path else 'stock'}):"
              f" {grown / 2**20:.1f} MiB")
        assert grown < RSS_BOUND
        assert echo(port).returncode == 0
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err.count("A-ABORT: PDU type 0x01 declaring 536870912 bytes (at most 65536)") == 4
    assert err.count("A-ABORT: PDU type 0x04 declaring 536870912 bytes (at most 262150)") == 4
