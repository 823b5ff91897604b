"""The inbound listener under load and abuse, with real sockets against the real listener.

Slots: silent sockets give their slots up to a real sender; when every connection is busy with a
message, a new one is closed and the busy ones still get their ACKs.  Timeouts: idle between
messages, and for a message to arrive whole.  Bytes: one message's size (answered AR) and the
bound across all connections.  Each limit leaves a log line naming it; the listener keeps serving.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from radassist.config import Hl7Settings, Settings
from radassist.db.migrate import upgrade
from radassist.hl7.mllp import END_BLOCK, START_BLOCK
from radassist.hl7.ris_ack import parse_ack
from tests.conftest import wait_until
from tests.hl7.test_inbound import RunningListener, orm

SB, EB = START_BLOCK, END_BLOCK


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    """SQLite only: the limits are the listener's, the database path is the same on PostgreSQL."""
    migrated = make_settings(database_url=f"sqlite:///{tmp_path / 'limits.sqlite3'}")
    upgrade(migrated)
    return migrated


@pytest.fixture
def start(settings: Settings) -> Iterator[Callable[..., RunningListener]]:
    running: list[RunningListener] = []

    def factory(**limits: object) -> RunningListener:
        listener = RunningListener(settings, Hl7Settings(accession_field="OBR-18", **limits))  # type: ignore[arg-type]
        running.append(listener.__enter__())
        return listener

    yield factory
    for listener in running:
        listener.__exit__(None, None, None)


def _connect(listener: RunningListener) -> socket.socket:
    return socket.create_connection(("127.0.0.1", listener.listener.port), timeout=10)


def _closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True when the listener closes ``sock`` (EOF or reset) within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
            if END_BLOCK in chunk:
                continue  # an ACK before the close (too large) is read elsewhere
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _ack(sock: socket.socket, message: str) -> str:
    sock.sendall(SB + message.encode() + EB)
    buffer = b""
    while EB not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "closed before the ACK"
        buffer += chunk
    return parse_ack(buffer[buffer.find(SB) + 1 : buffer.find(EB)].decode()).code


def _log(caplog: pytest.LogCaptureFixture, words: str) -> bool:
    return any(words in r.getMessage() for r in caplog.records if r.name.startswith("hl7_node"))


def test_silent_sockets_give_their_slots_to_a_sender(
    start: Callable[..., RunningListener], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = start(listen_max_connections=2)
    silent = [_connect(listener), _connect(listener)]
    wait_until(lambda: len(listener.listener.slots.active) == 2, timeout=10, interval=0.02)
    with _connect(listener) as sender:
        assert _ack(sender, orm("SLOT-1", accession="SLOT-ACC-1")) == "AA"
        assert _closed_by_peer(silent[0])  # the one idle longest made room
        assert _ack(sender, orm("SLOT-2", accession="SLOT-ACC-2")) == "AA"
    assert _log(caplog, "closed: idle, its slot given to")
    for sock in silent:
        sock.close()


def test_when_every_connection_is_busy_a_new_one_is_closed_and_the_busy_ones_are_served(
    start: Callable[..., RunningListener], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = start(listen_max_connections=2)
    messages = [orm(f"BUSY-{n}", accession=f"BUSY-ACC-{n}").encode() for n in range(2)]
    busy = [_connect(listener), _connect(listener)]
    for sock, message in zip(busy, messages, strict=True):
        sock.sendall(SB + message[:40])  # a message in progress holds its slot
    slots = listener.listener.slots
    wait_until(
        lambda: len(slots.active) == 2 and not any(c.idle for c in slots.active), timeout=10, interval=0.02
    )
    with _connect(listener) as refused:
        assert _closed_by_peer(refused)
    assert _log(caplog, "refused: all 2 connections are busy")
    for sock, message in zip(busy, messages, strict=True):
        sock.sendall(message[40:] + EB)
        buffer = b""
        while EB not in buffer:
            buffer += sock.recv(65536)
        assert parse_ack(buffer.strip(SB + EB).decode()).code == "AA"
        sock.close()


def test_an_idle_connection_is_closed(
    start: Callable[..., RunningListener], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = start(listen_idle_timeout_seconds=0.5)
    with _connect(listener) as sock:
        assert _ack(sock, orm("IDLE-1", accession="IDLE-ACC")) == "AA"
        started = time.monotonic()
        assert _closed_by_peer(sock)
    assert time.monotonic() - started < 5
    assert _log(caplog, "listen_idle_timeout_seconds")


def test_a_trickled_message_is_cut_off_and_others_are_served(
    start: Callable[..., RunningListener], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = start(listen_message_timeout_seconds=1.0, listen_idle_timeout_seconds=30)
    message = SB + orm("TRICKLE", accession="TRICKLE-ACC").encode()
    closed = False
    started = time.monotonic()
    with _connect(listener) as slow, _connect(listener) as other:
        slow.settimeout(0.2)
        for byte in message:  # one byte every 0.2 s: never idle, never whole
            try:
                slow.sendall(bytes([byte]))
                if slow.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
        assert _ack(other, orm("OTHER", accession="OTHER-ACC")) == "AA"
    assert closed and time.monotonic() - started < 10
    assert _log(caplog, "listen_message_timeout_seconds")


def test_a_message_too_large_is_answered_ar(start: Callable[..., RunningListener]) -> None:
    listener = start(listen_max_message_bytes=65536)
    with _connect(listener) as sock:
        sock.sendall(SB + orm("BIG-1").encode() + b"NTE|1||" + b"x" * 100_000)
        buffer = b""
        while EB not in buffer:
            chunk = sock.recv(65536)
            assert chunk
            buffer += chunk
        ack = parse_ack(buffer[buffer.find(SB) + 1 : buffer.find(EB)].decode())
        assert ack.code == "AR" and "too large" in ack.text
        assert _closed_by_peer(sock)
    with _connect(listener) as sock:
        assert _ack(sock, orm("BIG-2", accession="BIG-ACC")) == "AA"


def test_buffered_bytes_are_bounded_across_connections(
    start: Callable[..., RunningListener], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = start(listen_max_buffered_bytes=300_000, listen_max_message_bytes=250_000)
    budget = listener.listener.budget
    padded = orm("BUF-A", accession="BUF-ACC-A") + "NTE|1||" + "y" * 200_000 + "\r"
    first = _connect(listener)
    first.sendall(SB + padded.encode()[:180_000])
    wait_until(lambda: budget.used >= 180_000, timeout=10, interval=0.02)
    with _connect(listener) as second:
        second.sendall(SB + b"z" * 150_000)
        assert _closed_by_peer(second)
    assert _log(caplog, "listen_max_buffered_bytes")
    first.sendall(padded.encode()[180_000:] + EB)  # the first one keeps being served
    buffer = b""
    while EB not in buffer:
        buffer += first.recv(65536)
    assert parse_ack(buffer.strip(SB + EB).decode()).code == "AA"
    first.close()
    with _connect(listener) as sock:
        assert _ack(sock, orm("BUF-B", accession="BUF-ACC-B")) == "AA"
    wait_until(lambda: budget.used == 0, timeout=10, interval=0.02)
