"""Fixtures for the listener tests: a running node on a migrated database, and dcmtk peers."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.acceptor import NodeServer
from dicom_node.counters import NodeCounters
from dicom_node.server import start_listener, stop_listener
from radassist.config import AllowedCaller, Settings
from radassist.db.engine import make_sessionmaker
from radassist.store.filesystem_sync import FilesystemSync
from radassist.store.instances import InstanceStore
from tests.conftest import free_port, migrate, wait_for_port
from tests.peers import STORESCP, echoscu, storescu  # noqa: F401  (re-exported for the node tests)

REPO = Path(__file__).resolve().parents[2]

FAST_PATH = os.environ.get("RADASSIST_DICOM_PYNETDICOM_FAST_PATH", "true").strip().lower() not in ("false", "0", "no", "off")
"""Which pynetdicom the in-process listeners run: CI runs tests/node once in each mode, setting
``RADASSIST_DICOM_PYNETDICOM_FAST_PATH=false`` for stock pynetdicom (listener subprocesses read it
from the environment themselves)."""


@dataclass
class Node:
    settings: Settings
    server: NodeServer
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

    def block_study_folder(self, instance: Path) -> Path:
        """Put a file where ``instance``'s study folder would go, so storing it fails (out of
        resources); the blocking file, to remove when done."""
        ds = pydicom.dcmread(instance, stop_before_pixels=True)
        relpath = self.store.relpath_for(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        blocker = self.settings.storage.instances_dir / relpath.split("/")[0]
        blocker.write_bytes(b"not a folder")
        return blocker


SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def secondary_capture(path: Path, **drop: bool) -> Path:
    """A small valid instance; ``drop`` names elements to leave out (written without validation)."""
    ds = Dataset()
    ds.preamble = b"\x00" * 128
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "SENTINEL^PATIENT"
    ds.AccessionNumber = "ACC-SENTINEL-1"
    ds.Modality = "OT"
    for keyword in drop:
        delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=False)
    return path


@pytest.fixture
def factory(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated SQLite file in the test's folder: the listener's embedded database,
    where the group commit runs (a module may define its own, e.g. on both databases)."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'radassist.sqlite3'}")
    migrate(settings)
    made = make_sessionmaker(settings)
    yield made
    made.kw["bind"].dispose()


class HeldFlush(FilesystemSync):
    """The real flush, held back until the test lets it go (or failing, when told to)."""

    def __init__(self, folders: list[Path]) -> None:
        super().__init__(folders)
        self.allowed = threading.Event()
        self.fail = False
        self.calls = 0

    def sync(self) -> None:
        self.calls += 1
        if not self.allowed.wait(30):
            raise AssertionError("the test never let the flush go")
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        super().sync()


def one_series(folder: Path, count: int) -> list[Path]:
    """``count`` small instances of one series of one study (:func:`secondary_capture`)."""
    first = secondary_capture(folder / "0.dcm")
    template = pydicom.dcmread(first)
    files = [first]
    for n in range(1, count):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = folder / f"{n}.dcm"
        template.save_as(path, enforce_file_format=False)
        files.append(path)
    return files


#: The senders the tests use, allowed from loopback only (the node refuses unknown callers by default).
TEST_CALLERS = (
    AllowedCaller(ae_title="MODALITY", network="127.0.0.1/32"),
    AllowedCaller(ae_title="PYSCU", network="127.0.0.1/32"),
)


@pytest.fixture
def start_node() -> Iterator[Callable[..., Node]]:
    """Start listeners on given settings (free port filled in); all are stopped at teardown.

    Unless the settings name their own callers, the test senders (MODALITY, PYSCU) are allowed;
    unless they say otherwise, the listener runs in the mode of :data:`FAST_PATH`.
    """
    started: list[NodeServer] = []

    def factory(settings: Settings, **dicom_updates: object) -> Node:
        port = free_port()
        update: dict[str, object] = {
            "port": port, "host": "127.0.0.1", "pynetdicom_fast_path": FAST_PATH, **dicom_updates
        }
        if not settings.dicom.allowed_callers and "allowed_callers" not in dicom_updates:
            update["allowed_callers"] = TEST_CALLERS
        dicom = settings.dicom.model_copy(update=update)
        settings = settings.model_copy(update={"dicom": dicom})
        server = start_listener(settings)
        assert server is not None
        started.append(server)
        wait_for_port(port)
        assert server.shared is not None
        return Node(settings, server, server.shared.session_factory, server.shared.counters)

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


OPENSSL = "/usr/bin/openssl"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-days", "2", "-subj", f"/CN={name}", cwd=folder)


def _leaf(folder: Path, name: str, ca: str) -> None:
    (folder / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hospital CA with a server and a client certificate, and a rogue CA with its own client."""
    folder = tmp_path_factory.mktemp("pki")
    _ca(folder, "ca")
    _ca(folder, "rogue-ca")
    _leaf(folder, "server", "ca")
    _leaf(folder, "client", "ca")
    _leaf(folder, "rogue", "rogue-ca")
    return folder


@pytest.fixture
def node_database(make_settings: Callable[..., Settings], tmp_path: Path) -> str:
    """A migrated SQLite database for a listener subprocess."""
    url = f"sqlite:///{tmp_path / 'node.sqlite3'}"
    migrate(make_settings(database_url=url))
    return url


def listener_env(tmp_path: Path, url: str, port: int, **extra: str) -> dict[str, str]:
    """The environment of a ``python -m dicom_node`` on ``port`` that accepts any caller (the
    pynetdicom mode, like every other setting not given, from this process's environment)."""
    env = {
        **os.environ,
        "RADASSIST_STORAGE_PATH": str(tmp_path / "data"),
        "RADASSIST_DATABASE_URL": url,
        "RADASSIST_DICOM_HOST": "127.0.0.1",
        "RADASSIST_DICOM_PORT": str(port),
        "RADASSIST_DICOM_ALLOW_ANY_CALLER": "true",
        **extra,
    }
    env.pop("RADASSIST_CONFIG", None)
    return env
