"""dcmtk storescu/echoscu with the options the node tests need: calling AE, every transfer syntax, TLS."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pydicom

STORESCU = "/usr/bin/storescu"
ECHOSCU = "/usr/bin/echoscu"

#: storescu proposes the file's own syntax only when told to; this maps a syntax to its flag.
PROPOSE = {
    pydicom.uid.ImplicitVRLittleEndian: "-xi",
    pydicom.uid.ExplicitVRLittleEndian: "-xe",
    pydicom.uid.DeflatedExplicitVRLittleEndian: "-xd",
    pydicom.uid.JPEGBaseline8Bit: "-xy",
    pydicom.uid.JPEGExtended12Bit: "-xx",
    pydicom.uid.JPEGLosslessSV1: "-xs",
    pydicom.uid.JPEGLossless: "-xs",
    pydicom.uid.JPEGLSLossless: "-xt",
    pydicom.uid.JPEGLSNearLossless: "-xu",
    pydicom.uid.JPEG2000Lossless: "-xv",
    pydicom.uid.JPEG2000: "-xw",
    pydicom.uid.RLELossless: "-xr",
}


@dataclass(frozen=True)
class TlsPeer:
    """The client side of DICOM TLS: our key and certificate (or none) and the CA we trust."""

    ca: Path
    key: Path | None = None
    cert: Path | None = None

    def args(self) -> list[str]:
        own = ["+tls", str(self.key), str(self.cert)] if self.key and self.cert else ["+tla"]
        return [*own, "+cf", str(self.ca)]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def send(
    port: int,
    *files: Path,
    calling_ae: str = "MODALITY",
    called_ae: str = "RADASSIST",
    tls: TlsPeer | None = None,
) -> subprocess.CompletedProcess[str]:
    """All files on one association, proposing the first file's own transfer syntax."""
    ts = pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID
    args = [STORESCU, "-v", "-R", PROPOSE.get(ts, "-xe"), "-aet", calling_ae, "-aec", called_ae]
    args += tls.args() if tls else []
    return _run([*args, "127.0.0.1", str(port), *map(str, files)])


def echo(
    port: int, *, calling_ae: str = "MODALITY", called_ae: str = "RADASSIST", tls: TlsPeer | None = None
) -> subprocess.CompletedProcess[str]:
    args = [ECHOSCU, "-v", "-aet", calling_ae, "-aec", called_ae, *(tls.args() if tls else [])]
    return _run([*args, "127.0.0.1", str(port)])


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr
