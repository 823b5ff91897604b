"""pynetdicom's reactors wake on work (dicom_node.reactor) without changing what they do.

The point of the module is speed, which bench/ingest.py measures; these tests pin down the
behaviour that makes it safe: only the reactors' short polling sleeps are replaced, a replaced
wait ends when work arrives, and each association's wake-up sockets are closed when it ends.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pynetdicom.association
import pynetdicom.dul

from dicom_node.reactor import ReactorClock, _wait_for_message, install_reactor_clock
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


def test_a_message_wait_ends_when_the_dul_queues_a_message() -> None:
    messages: queue.Queue[object] = queue.Queue()
    assoc = SimpleNamespace(dimse=SimpleNamespace(msg_queue=messages))
    threading.Timer(0.05, messages.put, args=("P-DATA",)).start()
    started = time.monotonic()
    _wait_for_message(assoc, 30.0)  # type: ignore[arg-type]
    assert time.monotonic() - started < 20.0  # woken by the put, not by the 30 s bound
    assert messages.get_nowait() == "P-DATA"


def _open_sockets() -> int:
    return sum(1 for fd in os.listdir("/proc/self/fd") if "socket" in _target(fd))


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def test_associations_leave_no_wake_up_sockets_behind(node: Node, testdata: Path) -> None:
    from tests.conftest import wait_until

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
