"""Fixtures for the listener tests: a running node on a migrated database, and dcmtk peers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.handlers import NodeCounters
from dicom_node.server import start_listener, stop_listener
from radassist.config import Settings
from radassist.store.instances import InstanceStore
from tests.conftest import free_port, wait_for_port

STORESCU = "/usr/bin/storescu"
ECHOSCU = "/usr/bin/echoscu"
STORESCP = "/usr/bin/storescp"

#: storescu proposes only uncompressed syntaxes unless told which compressed one to offer.
_PROPOSE_FLAG = {
    pydicom.uid.JPEG2000Lossless: "-xv",
    pydicom.uid.JPEG2000: "-xw",
    pydicom.uid.JPEGLosslessSV1: "-xs",
    pydicom.uid.JPEGLossless: "-xs",
    pydicom.uid.JPEGLSLossless: "-xt",
    pydicom.uid.JPEGLSNearLossless: "-xu",
    pydicom.uid.RLELossless: "-xr",
    pydicom.uid.DeflatedExplicitVRLittleEndian: "-xd",
}


def storescu(
    port: int, *files: Path, called_ae: str = "RADASSIST", calling_ae: str = "MODALITY"
) -> subprocess.CompletedProcess[str]:
    """Send files with dcmtk's storescu in their own transfer syntax (one association per file)."""
    result: subprocess.CompletedProcess[str] | None = None
    for file in files:
        ts = pydicom.dcmread(file, stop_before_pixels=True).file_meta.TransferSyntaxUID
        flag = _PROPOSE_FLAG.get(ts, "-xe")
        result = subprocess.run(
            [
                STORESCU,
                "-v",
                "-R",
                flag,
                "-aet",
                calling_ae,
                "-aec",
                called_ae,
                "127.0.0.1",
                str(port),
                str(file),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            return result
    assert result is not None
    return result


def echoscu(port: int, called_ae: str = "RADASSIST") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ECHOSCU, "-aet", "MODALITY", "-aec", called_ae, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Node:
    settings: Settings
    server: ThreadedAssociationServer
    session_factory: sessionmaker[Session]
    counters: NodeCounters

    @property
    def port(self) -> int:
        return self.settings.dicom.port

    @property
    def store(self) -> InstanceStore:
        return InstanceStore(self.settings.storage.instances_dir)

    def files(self) -> list[Path]:
        """Every file under the instance store, temporaries included."""
        root = self.settings.storage.instances_dir
        return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def start_node() -> Iterator[Callable[[Settings], Node]]:
    """Start listeners on given settings (free port filled in); all are stopped at teardown."""
    started: list[ThreadedAssociationServer] = []

    def factory(settings: Settings) -> Node:
        port = free_port()
        dicom = settings.dicom.model_copy(update={"port": port, "host": "127.0.0.1"})
        settings = settings.model_copy(update={"dicom": dicom})
        server = start_listener(settings)
        assert server is not None
        started.append(server)
        wait_for_port(port)
        return Node(settings, server, server.radassist_session_factory, server.radassist_counters)  # type: ignore[attr-defined]

    yield factory
    for server in started:
        stop_listener(server, grace_seconds=5)


@pytest.fixture
def node(migrated_settings: Settings, start_node: Callable[[Settings], Node]) -> Node:
    """A listener on a migrated database (each test runs on SQLite and on PostgreSQL)."""
    return start_node(migrated_settings)


@pytest.fixture
def reference_scp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """dcmtk's storescp in bit-preserving mode: what it writes is exactly what storescu sent."""
    out = tmp_path / "storescp"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [STORESCP, "+B", "+xa", "-aet", "RADASSIST", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port, out
    finally:
        proc.terminate()
        proc.wait(timeout=10)
