"""``python -m dicom_node`` as its own process: serves, then stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification

from tests.conftest import free_port, wait_for_port, wait_until
from tests.node.conftest import REPO, echoscu, listener_env


def _associate(port: int, *, tls_ca: Path | None = None) -> Association:
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    tls_args = (ssl.create_default_context(cafile=str(tls_ca)), "127.0.0.1") if tls_ca is not None else None
    return ae.associate("127.0.0.1", port, ae_title="RADASSIST", tls_args=tls_args)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:  # a thread (an association's) that ended since the listing
            continue
    return found


def _listener_children(pid: int) -> list[int]:
    """The spawned listener processes (not multiprocessing's resource tracker)."""
    return [
        child
        for child in _children(pid)
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _connections_per_process(port: int, expected: int) -> dict[int, int] | None:
    """Established connections to ``port`` per listener process (from /proc), once all are accepted."""
    established: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            established.add(f"socket:[{fields[9]}]")
    counts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        held = sum(link in established for link in links)
        if held:
            counts[int(entry.name)] = held
    return counts if sum(counts.values()) == expected else None


def test_module_entry_point_serves_and_stops_on_sigterm(
    node_database: str, tmp_path: Path
) -> None:
    port = free_port()
    env = listener_env(tmp_path, node_database, port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_port(port)
        assert echoscu(port).returncode == 0
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "DICOM listener stopped" in err


def test_several_listener_processes_share_the_port(
    node_database: str, tmp_path: Path, pki: Path
) -> None:
    port, tls_port = free_port(), free_port()
    env = listener_env(
        tmp_path,
        node_database,
        port,
        RADASSIST_DICOM_LISTENER_PROCESSES="2",
        RADASSIST_DICOM_TLS_PORT=str(tls_port),
        RADASSIST_DICOM_TLS_CERT_FILE=str(pki / "server.pem"),
        RADASSIST_DICOM_TLS_KEY_FILE=str(pki / "server.key"),
    )
    log = tmp_path / "listener.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=stderr, text=True)
    try:
        wait_for_port(port)
        # The child is a spawned interpreter: wait until it serves too, or SIGTERM finds it importing.
        wait_until(lambda: log.read_text().count("DICOM listener RADASSIST on") == 2, timeout=60)
        assert all(echoscu(port).returncode == 0 for _ in range(6))
        # Associations held open at once go to the process serving fewest, not where a hash sends them.
        associations = [_associate(port) for _ in range(6)]
        try:
            assert all(a.is_established for a in associations)
            per_process = wait_until(lambda: _connections_per_process(port, 6), timeout=10)
            assert sorted(per_process.values()) == [3, 3], per_process
            assert set(per_process) <= {proc.pid, *_children(proc.pid)}
        finally:
            for association in associations:
                association.release()
        # The TLS port is shared the same way: each process serves one of two TLS associations.
        secured = [_associate(tls_port, tls_ca=pki / "ca.pem") for _ in range(2)]
        try:
            assert all(a.is_established and a.send_c_echo().Status == 0 for a in secured)
            per_process = wait_until(lambda: _connections_per_process(tls_port, 2), timeout=10)
            assert sorted(per_process.values()) == [1, 1], per_process
        finally:
            for association in secured:
                association.release()
        # A listener process that dies is replaced, and its replacement takes its share.
        (child,) = _listener_children(proc.pid)
        os.kill(child, signal.SIGKILL)
        wait_until(lambda: "listener process 1 exited (code -9); starting a new one" in log.read_text(), timeout=30)
        wait_until(lambda: log.read_text().count("DICOM listener RADASSIST on") == 3, timeout=60)
        (replacement,) = _listener_children(proc.pid)
        associations = [_associate(port) for _ in range(2)]
        try:
            per_process = wait_until(lambda: _connections_per_process(port, 2), timeout=10)
            assert sorted(per_process) == sorted([proc.pid, replacement]), per_process
        finally:
            for association in associations:
                association.release()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 0, err
    assert err.count("DICOM listener stopped") == 2  # the parent and its one child


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_in_use_stops_the_start_with_a_clear_message(
    node_database: str, tmp_path: Path, processes: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = listener_env(tmp_path, node_database, port, RADASSIST_DICOM_LISTENER_PROCESSES=processes)
        result = subprocess.run(
            [sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2, result.stderr
    assert f"cannot listen for DICOM on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "DICOM listener RADASSIST on" not in result.stderr  # nothing claims to listen


def test_listener_processes_stop_when_the_first_one_is_killed(
    node_database: str, tmp_path: Path
) -> None:
    """Orphans would keep the port, and a restarted listener could not have it."""
    port = free_port()
    env = listener_env(tmp_path, node_database, port, RADASSIST_DICOM_LISTENER_PROCESSES="2")
    log = tmp_path / "listener.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "dicom_node"], cwd=REPO, env=env, stderr=stderr, text=True)
    try:
        wait_until(lambda: log.read_text().count("DICOM listener RADASSIST on") == 2, timeout=60)
        (child,) = _listener_children(proc.pid)
        proc.kill()
        proc.wait()
        wait_until(lambda: not Path(f"/proc/{child}").exists(), timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "the first listener process is gone; listener process 1 stops" in log.read_text()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))  # the port is free for the next start
