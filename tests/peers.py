"""Real peers for tests: dcmtk's storescp as the PACS, python-hl7's MLLP server as the RIS.

Neither was written here; both are what a hospital's systems look like from the outside.
"""

from __future__ import annotations

import asyncio
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
class Pacs:
    ae_title: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    def received(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*") if p.is_file())


@contextmanager
def storescp(folder: Path, ae_title: str = "PACS") -> Iterator[Pacs]:
    """dcmtk storescp on a free loopback port, writing what it receives into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
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
def mllp_ris(policy: AckPolicy | None = None) -> Iterator[Ris]:
    """python-hl7's asyncio MLLP server in a background thread, acknowledging by ``policy``."""
    port = free_port()
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
        server = await hl7.mllp.start_hl7_server(handle, host="127.0.0.1", port=port, encoding="utf-8")
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

    thread = threading.Thread(target=run, daemon=True, name="mllp-ris")
    thread.start()
    ready.wait(10)
    wait_for_port(port)
    try:
        yield ris
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=5)
