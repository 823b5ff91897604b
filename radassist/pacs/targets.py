"""One entry point per action for every kind of destination: send an SR file, test the link.

The destination's ``kind`` (``dicom``, ``orthanc``, ``dicomweb``) picks the transport; all raise
the same :class:`TransientFailure` / :class:`PermanentFailure` with stable codes, so the outbox
does not care which one it talks to.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from radassist.config import DicomDestination, DicomwebDestination, OrthancDestination
from radassist.errors import PermanentFailure, TransientFailure
from radassist.pacs.cstore import echo, store_sr
from radassist.pacs.dicomweb import ping_dicomweb, stow
from radassist.pacs.orthanc import ping_orthanc, store_orthanc

AnyDestination = DicomDestination | OrthancDestination | DicomwebDestination


def tls_context(dest: DicomDestination) -> ssl.SSLContext | None:
    """The client TLS context of a DICOM TLS destination, or None when it uses plain TCP."""
    if not dest.tls:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=dest.tls_ca_file or None)
        context.check_hostname = dest.tls_check_hostname
        if dest.tls_cert_file:
            context.load_cert_chain(dest.tls_cert_file, dest.tls_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise PermanentFailure(
            f"TLS files of destination {dest.name} cannot be loaded ({type(exc).__name__})",
            code="pacs.tls.config",
        ) from None
    return context


def send_sr_file(path: Path, dest: AnyDestination, *, calling_ae_title: str) -> None:
    """Send the stored SR at ``path`` to ``dest``; return once it is stored there."""
    if isinstance(dest, DicomDestination):
        store_sr(
            path,
            ae_title=dest.ae_title,
            host=dest.host,
            port=dest.port,
            calling_ae_title=dest.calling_ae_title or calling_ae_title,
            tls=tls_context(dest),
        )
    elif isinstance(dest, OrthancDestination):
        store_orthanc(path, dest)
    elif isinstance(dest, DicomwebDestination):
        stow(path, dest)
    else:
        raise PermanentFailure(
            f"unknown destination kind {type(dest).__name__}", code="delivery.unknown_kind"
        )


def test_connection(dest: AnyDestination, *, calling_ae_title: str = "RADASSIST") -> None:
    """Return if ``dest`` answers (C-ECHO, ``GET /system``, QIDO-RS); raise a classified error if not."""
    if isinstance(dest, DicomDestination):
        ok = echo(
            ae_title=dest.ae_title,
            host=dest.host,
            port=dest.port,
            calling_ae_title=dest.calling_ae_title or calling_ae_title,
            tls=tls_context(dest),
        )
        if not ok:
            raise TransientFailure(f"PACS {dest.name} does not answer C-ECHO", code="pacs.unreachable")
    elif isinstance(dest, OrthancDestination):
        ping_orthanc(dest)
    elif isinstance(dest, DicomwebDestination):
        ping_dicomweb(dest)
    else:
        raise PermanentFailure(
            f"unknown destination kind {type(dest).__name__}", code="delivery.unknown_kind"
        )


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported
