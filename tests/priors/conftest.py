"""The hospital's archive for the priors tests: a private Orthanc (Q/R SCP, DICOMweb, REST) per module.

Orthanc knows our AE title (``DicomModalities``), so it answers our C-FIND and C-GET and sends
C-MOVE sub-operations to it; the move destination is dcmtk's storescp, started first so Orthanc's
configuration can name its port.  The archive holds the patient's history from
:func:`tests.priors.factories.make_history`.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from radassist.priors.results import CurrentStudy
from tests.conftest import free_port, wait_for_port
from tests.peers import ORTHANC, ORTHANC_DICOMWEB_PLUGIN, Pacs, storescp
from tests.priors.factories import History, make_history, part10

OUR_AE = "RADASSIST"


@dataclass
class Archive:
    http_port: int
    dicom_port: int
    ae_title: str
    history: History
    move_destination: Pacs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def current(self) -> CurrentStudy:
        return CurrentStudy.from_dataset(self.history.current[0])


def _start_orthanc(folder: Path, move_port: int) -> tuple[subprocess.Popen[bytes], int, int]:
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "radassist-priors-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ARCHIVE",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "UnknownSopClassAccepted": True,
        "DicomModalities": {"radassist": [OUR_AE, "127.0.0.1", move_port]},
        "Plugins": [ORTHANC_DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
    }
    (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    with open(folder / "orthanc.log", "wb") as log:
        process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=folder)
    try:
        wait_for_port(http_port, timeout=60)
        wait_for_port(dicom_port, timeout=60)
    except TimeoutError:
        process.terminate()
        process.wait(timeout=10)
        raise
    return process, http_port, dicom_port


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    folder = tmp_path_factory.mktemp("archive")
    history = make_history()
    with storescp(folder / "moved", ae_title=OUR_AE) as pacs:
        process, http_port, dicom_port = _start_orthanc(folder, pacs.port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client:
                for ds in history.all_instances():
                    client.post("/instances", content=part10(ds)).raise_for_status()
            yield Archive(http_port, dicom_port, "ARCHIVE", history, pacs)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (the source is down)."""
    return free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (the source hangs)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])
