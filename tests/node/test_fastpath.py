"""The fast path is one switch with a start-up check: a pynetdicom that lacks a name it changes is
named, and the listener refuses to start with the fast path on (and starts without it)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pynetdicom.dul
import pytest

from dicom_node import fastpath
from dicom_node.fastpath.requirements import REACHES
from radassist.errors import ConfigError
from tests.conftest import free_port, wait_for_port
from tests.node.conftest import REPO, echoscu, listener_env

REMOVED = "pynetdicom.dul.DULServiceProvider.kill_dul"
_WITHOUT_KILL_DUL = (
    "import sys, pynetdicom.dul\n"
    "del pynetdicom.dul.DULServiceProvider.kill_dul\n"
    "from dicom_node.__main__ import main\n"
    "sys.exit(main())\n"
)


def test_the_installed_pynetdicom_has_every_name_the_fast_path_changes() -> None:
    assert fastpath.check_compatible() == []
    assert len({reach.label for reach in REACHES}) == len(REACHES)


def test_a_missing_name_and_a_changed_signature_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(pynetdicom.dul.DULServiceProvider, "kill_dul")
    monkeypatch.setattr(pynetdicom.dul.DULServiceProvider, "receive_pdu", lambda self, block, timeout: None)
    assert fastpath.check_compatible() == [
        REMOVED,
        "pynetdicom.dul.DULServiceProvider.receive_pdu(wait, timeout)",
    ]
    with pytest.raises(ConfigError) as raised:
        fastpath.install()
    assert raised.value.code == "config.pynetdicom_incompatible"


def _run_without_kill_dul(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WITHOUT_KILL_DUL], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )


def test_the_listener_refuses_to_start_the_fast_path_on_a_pynetdicom_without_a_replaced_name(
    node_database: str, tmp_path: Path
) -> None:
    port = free_port()
    env = listener_env(tmp_path, node_database, port, RADASSIST_DICOM_PYNETDICOM_FAST_PATH="true")
    proc = _run_without_kill_dul(env)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    [line] = err.strip().splitlines()  # one clear line
    assert line.startswith("radassist: [config.pynetdicom_incompatible] the installed pynetdicom")
    assert REMOVED in line and "pynetdicom_fast_path = false" in line
    with pytest.raises(TimeoutError):
        wait_for_port(port, timeout=0.5)  # nothing was bound


def test_stock_pynetdicom_serves_without_that_name(node_database: str, tmp_path: Path) -> None:
    port = free_port()
    env = listener_env(tmp_path, node_database, port, RADASSIST_DICOM_PYNETDICOM_FAST_PATH="false")
    proc = _run_without_kill_dul(env)
    try:
        wait_for_port(port)
        result = echoscu(port)
        assert result.returncode == 0, result.stdout + result.stderr
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stock pynetdicom" in err
