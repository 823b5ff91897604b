"""DICOMweb STOW-RS (PS3.18 10.5): ``POST {root}/studies`` with one ``application/dicom`` part.

HTTP outcomes are classified by what happens next: 200 stored; 202 accepted with warnings (stored
unless our instance is in FailedSOPSequence); 409 and failed instances by their DICOM Failure
Reason (0xA7xx out of resources: retry; others: never); connection errors, timeouts, 5xx, 408 and
429: retry; 401/403 and other 4xx: never.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import httpx
import pydicom
from pydicom.errors import InvalidDicomError

from radassist.config import DicomwebDestination
from radassist.errors import PermanentFailure, TransientFailure

logger = logging.getLogger(__name__)

_FAILED_SOP_SEQUENCE = "00081198"
_FAILURE_REASON = "00081197"
_REFERENCED_SOP_INSTANCE_UID = "00081155"


def _client(dest: DicomwebDestination) -> httpx.Client:
    headers = {}
    token = dest.bearer_token.get_secret_value()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    auth = (dest.username, dest.password.get_secret_value()) if dest.username else None
    verify: Any = dest.tls_ca_file or True
    return httpx.Client(headers=headers, auth=auth, verify=verify, timeout=dest.timeout_seconds)


def _root(dest: DicomwebDestination) -> str:
    return dest.url.rstrip("/")


def multipart_body(parts: list[bytes]) -> tuple[bytes, str]:
    """A multipart/related body of DICOM files, and its Content-Type header."""
    boundary = f"radassist-{secrets.token_hex(12)}"
    chunks: list[bytes] = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii"), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


def _failed_reason(answer: Any, sop_instance_uid: str) -> int | None:
    """The Failure Reason the server gave for our instance, or None when it is not listed as failed."""
    if not isinstance(answer, dict):
        return None
    for item in (answer.get(_FAILED_SOP_SEQUENCE) or {}).get("Value", []) or []:
        uid = ((item.get(_REFERENCED_SOP_INSTANCE_UID) or {}).get("Value") or [None])[0]
        if uid in (None, sop_instance_uid):
            reason = ((item.get(_FAILURE_REASON) or {}).get("Value") or [0xC000])[0]
            return int(reason)
    return None


def _raise_for_reason(reason: int, dest: DicomwebDestination) -> None:
    text = f"DICOMweb {dest.name} refused the SR with failure reason 0x{reason:04X}"
    if (reason & 0xFF00) == 0xA700 or reason in (0x0110, 0x0212, 0x0213):
        raise TransientFailure(text, code="dicomweb.refused.a700")
    raise PermanentFailure(text, code=f"dicomweb.refused.{reason:04x}")


def _raise_for_http(status: int, dest: DicomwebDestination) -> None:
    where = f"DICOMweb {dest.name}"
    if status in (401, 403):
        raise PermanentFailure(
            f"{where} refused our credentials (HTTP {status})", code="dicomweb.unauthorized"
        )
    if status >= 500 or status in (408, 429):
        raise TransientFailure(f"{where} failed (HTTP {status})", code="dicomweb.server_error")
    raise PermanentFailure(f"{where} refused the request (HTTP {status})", code=f"dicomweb.http.{status}")


def stow(path: Path, dest: DicomwebDestination) -> None:
    """STOW-RS the DICOM file at ``path``; return once the server has stored it.

    Raises :class:`TransientFailure` (retry later) or :class:`PermanentFailure`.
    """
    try:
        data = Path(path).read_bytes()
        sop_instance_uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    except (OSError, InvalidDicomError, AttributeError) as exc:
        raise PermanentFailure(
            f"cannot read the file to send ({type(exc).__name__})", code="pacs.file.unreadable"
        ) from None
    body, content_type = multipart_body([data])
    try:
        with _client(dest) as client:
            response = client.post(
                f"{_root(dest)}/studies",
                content=body,
                headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
            )
    except httpx.TimeoutException:
        raise TransientFailure(
            f"DICOMweb {dest.name} did not answer in time", code="dicomweb.timeout"
        ) from None
    except httpx.HTTPError as exc:
        raise TransientFailure(
            f"cannot reach DICOMweb {dest.name} ({type(exc).__name__})", code="dicomweb.unreachable"
        ) from None
    try:
        answer = response.json() if response.content else None
    except ValueError:
        answer = None
    if response.status_code in (200, 202, 409):
        reason = _failed_reason(answer, sop_instance_uid)
        if reason is not None:
            _raise_for_reason(reason, dest)
        if response.status_code == 409:
            _raise_for_reason(0xC000, dest)
        logger.info("SR stored on DICOMweb %s (HTTP %d)", dest.name, response.status_code)
        return
    _raise_for_http(response.status_code, dest)


def ping_dicomweb(dest: DicomwebDestination) -> None:
    """The connection test: a QIDO-RS study search for at most one study answers 200 or 204."""
    try:
        with _client(dest) as client:
            response = client.get(
                f"{_root(dest)}/studies", params={"limit": "1"}, headers={"Accept": "application/dicom+json"}
            )
    except httpx.TimeoutException:
        raise TransientFailure(
            f"DICOMweb {dest.name} did not answer in time", code="dicomweb.timeout"
        ) from None
    except httpx.HTTPError as exc:
        raise TransientFailure(
            f"cannot reach DICOMweb {dest.name} ({type(exc).__name__})", code="dicomweb.unreachable"
        ) from None
    if response.status_code not in (200, 204):
        _raise_for_http(response.status_code, dest)
