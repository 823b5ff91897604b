"""Orthanc REST upload (``POST /instances``) through Orthanc's own client, ``orthanc-api-client``.

Outcomes are classified like a C-STORE: stored (or already stored: a retry of the same SOP
Instance UID is a success), retry later (no connection, timeout, 5xx, 409 -- Orthanc answers 409
when the same instance is being written concurrently), or never (400 bad file, 401/403, other 4xx).
"""

from __future__ import annotations

import logging
from pathlib import Path

from orthanc_api_client import OrthancApiClient
from orthanc_api_client import exceptions as orthanc_errors

from radassist.config import OrthancDestination
from radassist.errors import PermanentFailure, TransientFailure

logger = logging.getLogger(__name__)

_STORED = {"Success", "AlreadyStored"}


def _client(dest: OrthancDestination) -> OrthancApiClient:
    password = dest.password.get_secret_value()
    return OrthancApiClient(dest.url, user=dest.username or None, pwd=password or None)


def _classify(
    exc: orthanc_errors.OrthancApiException, dest: OrthancDestination
) -> TransientFailure | PermanentFailure:
    """Map the client's exception to ours, with a clean message (theirs may quote the response)."""
    where = f"Orthanc {dest.name}"
    if isinstance(exc, orthanc_errors.TimeoutError):
        return TransientFailure(f"{where} did not answer in time", code="orthanc.timeout")
    if isinstance(exc, orthanc_errors.HttpError):
        status = int(exc.http_status_code or 0)
        if status in (401, 403):
            return PermanentFailure(
                f"{where} refused our credentials (HTTP {status})", code="orthanc.unauthorized"
            )
        if status == 409:
            return TransientFailure(f"{where} reported a conflict (HTTP 409)", code="orthanc.conflict")
        if status == 400:
            return PermanentFailure(f"{where} rejected the file (HTTP 400)", code="orthanc.rejected")
        if status >= 500 or status in (408, 429) or status == 0:
            return TransientFailure(f"{where} failed (HTTP {status})", code="orthanc.server_error")
        return PermanentFailure(f"{where} refused the upload (HTTP {status})", code=f"orthanc.http.{status}")
    # ConnectionError and anything else the client raises before an HTTP answer.
    return TransientFailure(f"cannot reach {where} ({type(exc).__name__})", code="orthanc.unreachable")


def store_orthanc(path: Path, dest: OrthancDestination) -> str:
    """Upload the DICOM file at ``path``; return Orthanc's id of the stored instance.

    Raises :class:`TransientFailure` (retry later) or :class:`PermanentFailure`.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PermanentFailure(
            f"cannot read the file to send ({type(exc).__name__})", code="pacs.file.unreadable"
        ) from None
    client = _client(dest)
    try:
        response = client.post("instances", data=data, timeout=dest.timeout_seconds)
        answer = response.json()
    except orthanc_errors.OrthancApiException as exc:
        raise _classify(exc, dest) from None
    except ValueError:
        raise TransientFailure(
            f"Orthanc {dest.name} sent an unreadable answer", code="orthanc.bad_answer"
        ) from None
    finally:
        client.close()
    if isinstance(answer, list):
        answer = answer[0] if answer else {}
    status = answer.get("Status") if isinstance(answer, dict) else None
    if status not in _STORED:
        raise PermanentFailure(
            f"Orthanc {dest.name} did not store the file (status {status!r})", code="orthanc.not_stored"
        )
    logger.info("SR stored on Orthanc %s (%s)", dest.name, status)
    return str(answer["ID"])


def ping_orthanc(dest: OrthancDestination) -> None:
    """The connection test: ``GET /system`` answers with our credentials."""
    client = _client(dest)
    try:
        client.get("system", timeout=dest.timeout_seconds).json()
    except orthanc_errors.OrthancApiException as exc:
        raise _classify(exc, dest) from None
    except ValueError:
        raise TransientFailure(
            f"Orthanc {dest.name} sent an unreadable answer", code="orthanc.bad_answer"
        ) from None
    finally:
        client.close()
