"""Fast-path association sockets read each PDU in bulk (dicom_node.fastpath.bulk_read), with the library's results."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from dicom_node.fastpath.bulk_read import LARGEST_PREALLOCATED, BulkReadSocket


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    yield ours, peer
    ours.close()
    peer.close()


def _socket(sock: socket.socket) -> BulkReadSocket:
    assoc = SimpleNamespace(dul=SimpleNamespace(event_queue=queue.Queue()))
    return BulkReadSocket(assoc, client_socket=sock)  # type: ignore[arg-type]


def test_a_pdu_sent_in_pieces_is_read_whole(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    payload = bytes(range(256)) * 1024  # 256 KiB, a P-DATA-TF of the size we announce

    def send_in_pieces() -> None:
        for start in range(0, len(payload), 3000):
            peer.sendall(payload[start : start + 3000])

    sender = threading.Thread(target=send_in_pieces)
    sender.start()
    received = _socket(ours).recv(len(payload))
    sender.join()
    assert isinstance(received, bytearray)
    assert received == payload


def test_a_closed_connection_returns_what_arrived(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.sendall(b"\x04\x00\x00\x00")
    peer.close()
    assert _socket(ours).recv(6) == b"\x04\x00\x00\x00"  # short: the DUL reports the closed connection


def test_a_longer_read_is_never_preallocated(pair: tuple[socket.socket, socket.socket]) -> None:
    """A length beyond any PDU the guard lets through goes the library's way: a buffer only as large
    as what arrived, however much was asked for."""
    ours, peer = pair
    peer.sendall(b"\x01" * 10)
    peer.close()
    received = _socket(ours).recv(512 * 1024 * 1024)
    assert received == b"\x01" * 10
    assert LARGEST_PREALLOCATED < 1024 * 1024
