"""Real peers for tests: dcmtk's storescp as the PACS, python-hl7's MLLP server as the RIS.

Neither was written here; both are what a hospital's systems look like from the outside.
"""

from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import hl7
import hl7.mllp
import pydicom

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
    port: int, *files: Path, called_ae: str = "RADASSIST", calling_ae: str = "MODALITY",
    answer_timeout: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Send files with dcmtk's storescu in their own transfer syntax (one association per file).

    ``answer_timeout``: seconds storescu waits for each answer (connection, ACSE, DIMSE) before it
    gives up, instead of waiting without end."""
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
                *([] if answer_timeout is None else ["-to", str(answer_timeout), "-ta", str(answer_timeout),
                                                     "-td", str(answer_timeout)]),
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
class Pacs:
    ae_title: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    def received(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*") if p.is_file())


@contextmanager
def storescp(folder: Path, ae_title: str = "PACS", port: int | None = None) -> Iterator[Pacs]:
    """dcmtk storescp on a free loopback port (or ``port``: e.g. one that was down a moment ago),
    writing what it receives into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [STORESCP, "--aetitle", ae_title, "--output-directory", str(folder), "+xa", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port)
        yield Pacs(ae_title, port, folder, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


AckPolicy = Callable[[hl7.Message, int], str | None]
"""Given a message and how many times its control id has been seen, the ACK code (or None: no answer)."""


@dataclass
class Ris:
    port: int
    messages: list[str] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)


@contextmanager
def mllp_ris(
    policy: AckPolicy | None = None, *, port: int | None = None, ssl: ssl_module.SSLContext | None = None
) -> Iterator[Ris]:
    """python-hl7's asyncio MLLP server in a background thread, acknowledging by ``policy``.

    ``port``: listen there (e.g. a port that was down a moment ago); ``ssl``: serve MLLP over TLS.
    """
    port = port or free_port()
    ris = Ris(port)
    seen: dict[str, int] = {}
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def handle(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                ris.messages.append(str(message))
                control_id = str(message.segment("MSH")[10])
                seen[control_id] = seen.get(control_id, 0) + 1
                code = "AA" if policy is None else policy(message, seen[control_id])
                if code is None:
                    continue
                ack = message.create_ack(ack_code=code)
                ris.acks.append(code)
                writer.writemessage(ack)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await hl7.mllp.start_hl7_server(
            handle, host="127.0.0.1", port=port, encoding="utf-8", ssl=ssl
        )
        ready.set()
        async with server:
            await server.serve_forever()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(serve())
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            # Connections still open when the server stopped end here, inside the loop, not when
            # the garbage collector meets their coroutines after the loop is gone.
            pending = asyncio.all_tasks(loop)
            for open_connection in pending:
                open_connection.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=run, daemon=True, name="mllp-ris")
    thread.start()
    ready.wait(10)
    wait_for_port(port)
    try:
        yield ris
    finally:
        # One call into the loop cancels the server; the thread then ends the open connections and
        # closes the loop. Cancelling task by task from here raced that close.
        if not loop.is_closed():  # closed already when the server could not start
            loop.call_soon_threadsafe(_cancel_all_tasks, loop)
        thread.join(timeout=5)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


ORTHANC = "/usr/sbin/Orthanc"
ORTHANC_DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


@dataclass
class OrthancServer:
    http_port: int
    dicom_port: int
    ae_title: str
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"


def start_orthanc(
    folder: Path, *, http_port: int | None = None, dicom_port: int | None = None, ae_title: str = "ORTHANC"
) -> OrthancServer:
    """Start Debian's Orthanc (with its DICOMweb plugin) on loopback ports, storage in ``folder``.

    Orthanc 1.10 cannot choose its listening address; ``RemoteAccessAllowed: false`` makes it refuse
    every HTTP client but localhost, and the ports are free, random ones.
    """
    folder.mkdir(parents=True, exist_ok=True)
    http_port = http_port or free_port()
    dicom_port = dicom_port or free_port()
    config = {
        "Name": "radassist-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ae_title,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "UnknownSopClassAccepted": True,
        "HttpServerThreadsCount": 8,
        "Plugins": [ORTHANC_DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([ORTHANC, str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    log.close()
    try:
        wait_for_port(http_port, timeout=60)
        wait_for_port(dicom_port, timeout=60)
    except TimeoutError:
        process.terminate()
        process.wait(timeout=10)
        raise
    return OrthancServer(http_port, dicom_port, ae_title, folder, process)


def stop_orthanc(server: OrthancServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@contextmanager
def orthanc(folder: Path, ae_title: str = "ORTHANC") -> Iterator[OrthancServer]:
    """An Orthanc for one test (REST, DICOM and DICOMweb on free loopback ports)."""
    server = start_orthanc(folder, ae_title=ae_title)
    try:
        yield server
    finally:
        stop_orthanc(server)
