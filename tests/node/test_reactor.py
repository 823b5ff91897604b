"""pynetdicom's reactors wake on work (dicom_node.fastpath.reactor) without changing what they do.

The point of the module is speed, which bench/ingest.py measures; these tests pin down the
behaviour that makes it safe: only the reactors' short polling sleeps are replaced, a replaced
wait ends when work arrives (a message, an association primitive, a stop), and each
association's wake-up sockets are closed when it ends.  Where a test needs to see that a wait
was ended by work, the bound is raised to 30 s so that only the wake-up can end it in time.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pynetdicom.association
import pynetdicom.dul
import pytest
from pynetdicom import AE
from pynetdicom._globals import MODE_ACCEPTOR
from pynetdicom.association import Association

from dicom_node.fastpath import reactor
from dicom_node.fastpath.reactor import ReactorClock, _wait_for_message, install_reactor_clock, wake_on_work
from radassist.config import Settings
from tests.node.conftest import Node
from tests.node.dcmtk import echo, send


def test_only_short_sleeps_of_threads_with_a_wait_are_replaced() -> None:
    calls: list[float] = []

    class Reactor(threading.Thread):
        def run(self) -> None:
            clock = ReactorClock()
            clock.sleep(0.001)  # a reactor poll: replaced
            clock.sleep(0.0001)  # shorter: replaced
            clock.sleep(0.01)  # longer: real

    reactor = Reactor()
    reactor._radassist_wait = calls.append  # type: ignore[attr-defined]
    reactor.start()
    reactor.join()
    assert calls == [0.001, 0.0001]

    assert ReactorClock().monotonic is time.monotonic  # everything else is the real time module


def test_the_clock_is_installed_once_in_both_reactor_modules() -> None:
    install_reactor_clock()
    first = pynetdicom.dul.time
    install_reactor_clock()
    assert isinstance(pynetdicom.dul.time, ReactorClock)
    assert isinstance(pynetdicom.association.time, ReactorClock)
    assert pynetdicom.dul.time is first


@pytest.fixture
def long_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reactor, "LONGEST_WAIT_S", 30.0)


def _acceptor() -> Association:
    """An association as the listener builds one (threads not started), with wake-ups installed."""
    ae = AE(ae_title="RADASSIST")
    assoc = Association(ae, MODE_ACCEPTOR)
    wake_on_work(assoc)
    return assoc


def _waits_until(action: Callable[[], object], wait: Callable[[], None]) -> float:
    threading.Timer(0.05, action).start()
    started = time.monotonic()
    wait()
    return time.monotonic() - started


def test_a_message_wait_ends_when_the_dul_queues_a_message(long_bound: None) -> None:
    assoc = _acceptor()
    assoc.dul.is_alive = lambda: True  # type: ignore[method-assign]
    elapsed = _waits_until(lambda: assoc.dimse.msg_queue.put((1, "C-STORE-RQ")), lambda: _wait_for_message(assoc, 0.001))
    assert elapsed < 20.0  # woken by the put, not by the 30 s bound
    assert assoc.dimse.msg_queue.get_nowait() == (1, "C-STORE-RQ")


def test_a_message_wait_ends_when_a_release_request_arrives(long_bound: None) -> None:
    # A-RELEASE-RQ and A-ABORT come through the DUL's user queue, not the DIMSE one.
    assoc = _acceptor()
    assoc.dul.is_alive = lambda: True  # type: ignore[method-assign]
    elapsed = _waits_until(lambda: assoc.dul.to_user_queue.put("A-RELEASE"), lambda: _wait_for_message(assoc, 0.001))
    assert elapsed < 20.0
    assert assoc.dul.to_user_queue.get_nowait() == "A-RELEASE"


def test_a_message_wait_does_not_start_when_work_is_waiting_or_the_dul_ended(long_bound: None) -> None:
    assoc = _acceptor()
    assoc.dul.to_user_queue.put("A-ABORT")
    assoc.dul.is_alive = lambda: True  # type: ignore[method-assign]
    assert _waits_until(lambda: None, lambda: _wait_for_message(assoc, 0.001)) < 20.0
    assoc.dul.to_user_queue.get_nowait()
    assoc.dul.is_alive = lambda: False  # type: ignore[method-assign]
    assert _waits_until(lambda: None, lambda: _wait_for_message(assoc, 0.001)) < 20.0


def test_a_dul_wait_ends_when_the_dul_is_told_to_stop(long_bound: None) -> None:
    assoc = _acceptor()
    ours, peer = socket.socketpair()
    try:
        assoc.dul.socket = SimpleNamespace(socket=ours)  # type: ignore[assignment]
        wait = assoc.dul._radassist_wait
        assert _waits_until(assoc.dul.kill_dul, lambda: wait(0.001)) < 20.0
        assoc.dul._kill_thread = False
        assert _waits_until(lambda: assoc.dul.send_pdu(object()), lambda: wait(0.001)) < 20.0
        assert _waits_until(lambda: peer.send(b"\x07"), lambda: wait(0.001)) < 20.0  # the peer sent a PDU
    finally:
        ours.close()
        peer.close()


def _open_sockets() -> int:
    return sum(1 for fd in os.listdir("/proc/self/fd") if "socket" in _target(fd))


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def test_associations_leave_no_wake_up_sockets_behind(
    migrated_settings: Settings, start_node: Callable[..., Node], testdata: Path
) -> None:
    from tests.conftest import wait_until

    node = start_node(migrated_settings, pynetdicom_fast_path=True)
    assert echo(node.port).returncode == 0  # warm up: pools and engines open their own sockets
    gc.collect()
    gc.disable()  # an association is a reference cycle: only its DUL thread may close the pair
    try:
        before = _open_sockets()
        for _ in range(10):
            assert echo(node.port).returncode == 0
        assert send(node.port, testdata / "pydicom-data" / "liver.dcm").returncode == 0
        wait_until(lambda: _open_sockets() <= before + 2, timeout=15)
    finally:
        gc.enable()
