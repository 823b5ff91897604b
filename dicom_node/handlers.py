"""Event handlers bound to the AE: C-STORE and C-ECHO (intervention), association life (notification).

``handle_store`` answers Success only after the instance is fsynced on disk **and** its rows are
committed; any other outcome gets a named failure status from :mod:`dicom_node.statuses` and
leaves no file behind that the database does not know about.  Handlers receive what they need
as bound arguments (store, session factory, settings, counters): no globals.

Logs carry the calling AE title, sizes, short hashes and surrogate ids: never UIDs above DEBUG,
never patient attributes, never a library message that might quote the data set.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, fields
from io import BytesIO

from pydicom import dcmread
from pynetdicom.events import Event
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.statuses import REJECTION_STATUS, EchoStatus, StoreStatus
from radassist import metrics
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.errors import RejectedInput
from radassist.events import EventTag, record_event
from radassist.intake.header import InstanceHeader, read_header
from radassist.intake.record import record_instance
from radassist.logging import short_hash
from radassist.store.instances import InstanceStore, StoredFile

logger = logging.getLogger(__name__)


@dataclass
class NodeCounters:
    """Process-wide counts of what the listener did (for readiness pages and tests); thread-safe."""

    associations_accepted: int = 0
    associations_released: int = 0
    associations_aborted: int = 0
    echoes: int = 0
    instances_stored: int = 0
    instances_duplicate: int = 0
    instances_rejected: int = 0
    instances_failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def _count(counters: NodeCounters | None, name: str) -> None:
    if counters is not None:
        counters.add(name)


def _calling_ae(event: Event) -> str:
    return str(event.assoc.requestor.ae_title).strip() or "-"


def _called_ae(event: Event) -> str:
    return str(event.assoc.acceptor.ae_title).strip()


# --- intervention handlers -------------------------------------------------------------------


def handle_echo(event: Event, counters: NodeCounters | None = None) -> int:
    """C-ECHO: the connection test every PACS runs before sending."""
    _count(counters, "echoes")
    logger.info("C-ECHO from %s", _calling_ae(event))
    return int(EchoStatus.SUCCESS)


def _parse(encoded: bytes) -> InstanceHeader:
    try:
        dataset = dcmread(BytesIO(encoded), stop_before_pixels=True)
    except Exception:
        logger.debug("undecodable data set", exc_info=True)
        raise RejectedInput("the data set could not be decoded", code="dicom.undecodable") from None
    return read_header(dataset)


def _check_command(event: Event, header: InstanceHeader) -> None:
    """The data set must be what the C-STORE command says it is."""
    request = event.request
    affected_class = str(getattr(request, "AffectedSOPClassUID", "") or "")
    affected_instance = str(getattr(request, "AffectedSOPInstanceUID", "") or "")
    if affected_class and header.sop_class_uid != affected_class:
        raise RejectedInput(
            "the data set's SOP Class UID differs from the presentation context",
            code="dicom.sop_class_mismatch",
        )
    if affected_instance and header.sop_instance_uid != affected_instance:
        raise RejectedInput(
            "the data set's SOP Instance UID differs from the command's",
            code="dicom.instance_conflict",
        )


def _record_rejection(
    session_factory: sessionmaker[Session], code: str, calling_ae: str, status: int
) -> None:
    """Best effort: a rejection shows on the timeline, but failing to note it changes nothing."""
    try:
        with session_factory() as session:
            record_event(session, EventTag.INSTANCE_REJECTED, code=code, calling_ae=calling_ae, status=status)
            session.commit()
    except Exception:
        logger.warning(
            "could not record a rejected instance in the database",
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )


def handle_store(
    event: Event,
    store: InstanceStore,
    session_factory: sessionmaker[Session],
    settings: Settings,
    counters: NodeCounters | None = None,
) -> int:
    """C-STORE: parse the header, write the received bytes durably, commit the rows, then answer."""
    started = time.monotonic()
    calling_ae = _calling_ae(event)
    try:
        return _store(event, store, session_factory, calling_ae, counters, started)
    except Exception as exc:
        _count(counters, "instances_failed")
        metrics.count_rejected("node.unexpected")
        logger.error(
            "C-STORE from %s failed unexpectedly (%s)",
            calling_ae,
            type(exc).__name__,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        return int(StoreStatus.PROCESSING_FAILURE)


def _store(
    event: Event,
    store: InstanceStore,
    session_factory: sessionmaker[Session],
    calling_ae: str,
    counters: NodeCounters | None,
    started: float,
) -> int:
    encoded = event.encoded_dataset(include_meta=True)
    try:
        header = _parse(encoded)
        _check_command(event, header)
    except RejectedInput as exc:
        status = REJECTION_STATUS.get(exc.code, StoreStatus.CANNOT_UNDERSTAND)
        _count(counters, "instances_rejected")
        metrics.count_rejected(exc.code)
        logger.warning("C-STORE from %s rejected: %s (status 0x%04X)", calling_ae, exc.code, status)
        _record_rejection(session_factory, exc.code, calling_ae, int(status))
        return int(status)

    study_handle = short_hash(header.study_instance_uid)
    logger.debug("C-STORE of SOP instance %s in study %s", header.sop_instance_uid, header.study_instance_uid)

    try:
        stored = store.write(
            encoded, header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid
        )
    except (OSError, ValueError) as exc:
        _count(counters, "instances_failed")
        metrics.count_rejected("storage.write_failed")
        logger.error(
            "C-STORE from %s: could not write the instance to disk (%s); answering out of resources",
            calling_ae,
            type(exc).__name__,
        )
        return int(StoreStatus.OUT_OF_RESOURCES)

    try:
        with session_factory() as session:
            new = record_instance(
                session,
                header,
                stored,
                calling_ae=calling_ae,
                called_ae=_called_ae(event),
                now=utcnow(),
            )
            session.commit()
    except Exception as exc:
        _undo_write(store, stored)
        _count(counters, "instances_failed")
        metrics.count_rejected("db.write_failed")
        logger.error(
            "C-STORE from %s: could not record the instance (%s); answering out of resources",
            calling_ae,
            type(exc).__name__,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        return int(StoreStatus.OUT_OF_RESOURCES)

    _count(counters, "instances_stored" if new else "instances_duplicate")
    metrics.INSTANCES_RECEIVED.inc()
    logger.info(
        "stored %s instance of study %s from %s (%d bytes, %.0f ms)",
        "a new" if new else "a re-sent",
        study_handle,
        calling_ae,
        stored.size_bytes,
        (time.monotonic() - started) * 1000,
    )
    return int(StoreStatus.SUCCESS)


def _undo_write(store: InstanceStore, stored: StoredFile) -> None:
    """Remove a file the database does not know about; a replaced copy stays (its row still points to it)."""
    if stored.replaced:
        return
    try:
        store.remove(stored.relpath)
    except (OSError, ValueError) as exc:
        logger.error("could not remove an unrecorded instance file (%s)", type(exc).__name__)


# --- notification handlers: log and count only --------------------------------------------


def on_accepted(event: Event, counters: NodeCounters | None = None) -> None:
    _count(counters, "associations_accepted")
    logger.info("association accepted from %s at %s", _calling_ae(event), event.assoc.requestor.address)


def on_released(event: Event, counters: NodeCounters | None = None) -> None:
    _count(counters, "associations_released")
    logger.info("association released by %s", _calling_ae(event))


def on_aborted(event: Event, counters: NodeCounters | None = None) -> None:
    _count(counters, "associations_aborted")
    logger.warning("association with %s aborted", _calling_ae(event))


__all__ = [
    "NodeCounters",
    "handle_echo",
    "handle_store",
    "on_aborted",
    "on_accepted",
    "on_released",
]
