"""C-STORE SCU: send one produced file (the draft SR) to a PACS, and C-ECHO to test the link.

DIMSE statuses are mapped by what should happen next (PS3.4 Annex B / PS3.7 Annex C):
success and warnings (0xB000, 0xB006, 0xB007) are delivered; out of resources (0xA7xx),
processing failure (0x0110) or no answer are retried; "data set does not match SOP class"
(0xA9xx), "cannot understand" (0xCxxx) and the other refusals fail the delivery for good.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Literal

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from radassist.errors import PermanentFailure, TransientFailure

logger = logging.getLogger(__name__)

_UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_TRANSIENT_STATUSES = {0x0110, 0x0212, 0x0213, 0xFE00}

StoreOutcome = Literal["success", "warning", "transient", "permanent"]


def _make_ae(calling_ae_title: str, timeout_s: float) -> AE:
    ae = AE(ae_title=calling_ae_title)
    ae.connection_timeout = timeout_s
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    return ae


def _associate(
    ae: AE, *, ae_title: str, host: str, port: int, tls: ssl.SSLContext | None = None
) -> Association:
    where = f"{ae_title}@{host}:{port}"
    try:
        assoc = ae.associate(host, port, ae_title=ae_title, tls_args=(tls, host) if tls is not None else None)
    except ssl.SSLError as exc:
        raise TransientFailure(
            f"TLS handshake with PACS {where} failed: {type(exc).__name__}", code="pacs.tls"
        ) from None
    except (OSError, ValueError) as exc:
        raise TransientFailure(
            f"cannot associate with PACS {where}: {type(exc).__name__}", code="pacs.unreachable"
        ) from None
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise TransientFailure(f"PACS {where} rejected the association", code="pacs.rejected")
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        # pynetdicom aborts when the peer accepts none of our contexts: a configuration problem.
        raise PermanentFailure(
            f"PACS {where} accepts none of the requested presentation contexts", code="pacs.context.rejected"
        )
    raise TransientFailure(
        f"no association with PACS {where} (connection refused, aborted or timed out)",
        code="pacs.unreachable",
    )


def classify_status(status: int) -> StoreOutcome:
    """``"success"``, ``"warning"``, ``"transient"`` or ``"permanent"`` for a C-STORE status."""
    if status == 0x0000:
        return "success"
    if status in (0x0001, 0x0107, 0x0116) or (status & 0xF000) == 0xB000:
        return "warning"
    if (status & 0xFF00) == 0xA700 or status in _TRANSIENT_STATUSES:
        return "transient"
    return "permanent"


def store_sr(
    path: Path,
    *,
    ae_title: str,
    host: str,
    port: int,
    calling_ae_title: str,
    timeout_s: float = 30,
    tls: ssl.SSLContext | None = None,
) -> None:
    """C-STORE the DICOM file at ``path`` to ``ae_title@host:port``; return once it is stored.

    Raises :class:`TransientFailure` (retry later) or :class:`PermanentFailure` (never works).
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (OSError, InvalidDicomError) as exc:
        raise PermanentFailure(
            f"cannot read the file to send ({type(exc).__name__})", code="pacs.file.unreadable"
        ) from None
    sop_class = UID(ds.SOPClassUID)
    transfer_syntax = UID(ds.file_meta.TransferSyntaxUID)
    syntaxes = [transfer_syntax] if transfer_syntax not in _UNCOMPRESSED else list(_UNCOMPRESSED)
    if transfer_syntax in _UNCOMPRESSED:
        # The file's own syntax first, so pynetdicom sends it without re-encoding when it can.
        syntaxes.sort(key=lambda ts: ts != transfer_syntax)

    ae = _make_ae(calling_ae_title, timeout_s)
    ae.add_requested_context(sop_class, syntaxes)
    where = f"{ae_title}@{host}:{port}"
    assoc = _associate(ae, ae_title=ae_title, host=host, port=port, tls=tls)
    try:
        try:
            status_ds = assoc.send_c_store(ds)
        except ValueError:
            # No accepted presentation context for this SOP class / transfer syntax.
            raise PermanentFailure(
                f"PACS {where} accepts no presentation context for SOP class {sop_class.name}",
                code="pacs.context.rejected",
            ) from None
        except (RuntimeError, OSError) as exc:
            raise TransientFailure(
                f"C-STORE to PACS {where} failed: {type(exc).__name__}", code="pacs.unreachable"
            ) from None
        if "Status" not in status_ds:
            raise TransientFailure(
                f"no C-STORE response from PACS {where} (timeout or abort)", code="pacs.unreachable"
            )
        status = int(status_ds.Status)
        outcome = classify_status(status)
        if outcome == "success":
            logger.info("SR stored on PACS %s", where)
            return
        if outcome == "warning":
            logger.warning("SR stored on PACS %s with warning status 0x%04X", where, status)
            return
        code = "pacs.refused.a700" if (status & 0xFF00) == 0xA700 else f"pacs.refused.{status:04x}"
        text = f"PACS {where} refused the SR with status 0x{status:04X}"
        if outcome == "transient":
            raise TransientFailure(text, code=code)
        raise PermanentFailure(text, code=code)
    finally:
        if assoc.is_established:
            assoc.release()


def echo(
    *,
    ae_title: str,
    host: str,
    port: int,
    calling_ae_title: str,
    timeout_s: float = 10,
    tls: ssl.SSLContext | None = None,
) -> bool:
    """C-ECHO ``ae_title@host:port``: the connection test for a PACS target."""
    ae = _make_ae(calling_ae_title, timeout_s)
    ae.add_requested_context(Verification)
    try:
        assoc = _associate(ae, ae_title=ae_title, host=host, port=port, tls=tls)
    except (TransientFailure, PermanentFailure) as exc:
        logger.info("C-ECHO to %s@%s:%s failed: %s", ae_title, host, port, exc.code)
        return False
    try:
        status_ds = assoc.send_c_echo()
        return "Status" in status_ds and int(status_ds.Status) == 0x0000
    except (RuntimeError, OSError, ValueError):
        return False
    finally:
        if assoc.is_established:
            assoc.release()
