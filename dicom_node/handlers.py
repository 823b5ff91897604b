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
import uuid
from dataclasses import dataclass, field, fields

from pynetdicom.events import Event
from pynetdicom.pdu_primitives import A_RELEASE
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.access import INTAKE_PAUSED, LOW_DISK, CallerPolicy, IntakePauses, Refusal, malformed_request
from dicom_node.associations import AssociationLog, AssociationState
from dicom_node.capacity import DiskGuard
from dicom_node.part10 import part10_stream
from dicom_node.statuses import REJECTION_STATUS, EchoStatus, StoreStatus
from radassist import metrics
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import write_turn
from radassist.errors import RejectedInput
from radassist.events import EventTag, record_event
from radassist.intake.header import InstanceHeader, parse_header
from radassist.intake.record import record_instance
from radassist.intake.sop_classes import is_image_sop_class
from radassist.logging import short_hash
from radassist.pipelines import pipeline_for
from radassist.prefetch.start import moved_prior
from radassist.store.instances import InstanceStore, StoredFile

logger = logging.getLogger(__name__)


@dataclass
class NodeCounters:
    """Process-wide counts of what the listener did (for readiness pages and tests); thread-safe."""

    associations_accepted: int = 0
    associations_released: int = 0
    associations_aborted: int = 0
    associations_refused: int = 0
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


def _parse(encoded: bytes, transfer_syntax_uid: str) -> InstanceHeader:
    try:
        header = parse_header(encoded, transfer_syntax_uid)
    except RejectedInput:
        raise
    except Exception:
        logger.debug("undecodable data set", exc_info=True)
        raise RejectedInput("the data set could not be decoded", code="dicom.undecodable") from None
    return header


def _check_command(event: Event, header: InstanceHeader) -> None:
    """The data set must be what the C-STORE command says it is, on a context negotiated for it.

    pynetdicom picks the service from the command's Affected SOP Class UID, not from the
    presentation context, so a CT command and data set sent on a context accepted for Secondary
    Capture (or for Verification) reach this handler: PS3.7 9.1.1.1 wants the context's abstract
    syntax to be the SOP class, so that is refused here (0xA900) like a data set that differs.
    """
    request = event.request
    affected_class = str(getattr(request, "AffectedSOPClassUID", "") or "")
    affected_instance = str(getattr(request, "AffectedSOPInstanceUID", "") or "")
    context = getattr(event, "context", None)
    abstract_syntax = str(getattr(context, "abstract_syntax", "") or "")
    if abstract_syntax and header.sop_class_uid != abstract_syntax:
        raise RejectedInput(
            "the data set's SOP Class UID differs from the presentation context",
            code="dicom.sop_class_mismatch",
        )
    if affected_class and header.sop_class_uid != affected_class:
        raise RejectedInput(
            "the data set's SOP Class UID differs from the command's",
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


def _state(event: Event) -> AssociationState | None:
    return getattr(event.assoc, "radassist", None)


def handle_store(
    event: Event,
    store: InstanceStore,
    session_factory: sessionmaker[Session],
    settings: Settings,
    counters: NodeCounters | None = None,
    disk_guard: DiskGuard | None = None,
) -> int:
    """C-STORE: parse the header, write the received bytes durably, commit the rows, then answer."""
    started = time.monotonic()
    calling_ae = _calling_ae(event)
    state = _state(event)
    if disk_guard is not None and not disk_guard.has_room():
        _count(counters, "instances_failed")
        metrics.count_rejected(LOW_DISK.code)
        if state is not None:
            state.count(False)
        logger.warning("C-STORE from %s refused: free disk space below the threshold (0xA700)", calling_ae)
        return int(StoreStatus.OUT_OF_RESOURCES)
    status = int(StoreStatus.PROCESSING_FAILURE)
    try:
        status, size = _store(event, store, session_factory, settings, calling_ae, counters, started)
        if state is not None:
            state.count(status == StoreStatus.SUCCESS, size)
        return status
    except Exception as exc:
        if state is not None:
            state.count(False)
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
    settings: Settings,
    calling_ae: str,
    counters: NodeCounters | None,
    started: float,
) -> tuple[int, int]:
    """The status to answer and the number of bytes stored (0 when nothing was)."""
    try:
        encoded = part10_stream(event)
        header = _parse(encoded, str(event.context.transfer_syntax))
        _check_command(event, header)
    except RejectedInput as exc:
        status = REJECTION_STATUS.get(exc.code, StoreStatus.CANNOT_UNDERSTAND)
        _count(counters, "instances_rejected")
        metrics.count_rejected(exc.code)
        logger.warning("C-STORE from %s rejected: %s (status 0x%04X)", calling_ae, exc.code, status)
        _record_rejection(session_factory, exc.code, calling_ae, int(status))
        return int(status), 0

    study_handle = short_hash(header.study_instance_uid)
    logger.debug("C-STORE of SOP instance %s in study %s", header.sop_instance_uid, header.study_instance_uid)

    called_ae = _called_ae(event)
    reopen = is_image_sop_class(header.sop_class_uid) or pipeline_for(settings, called_ae).draft_non_image
    reopen = reopen and not moved_prior(settings, getattr(event.request, "MoveOriginatorApplicationEntityTitle", None))
    # The file is durable (fsynced, renamed, folder fsynced) before the transaction starts, so a
    # committed row always points to a durable file and no database lock is held across an fsync.
    try:
        stored = store.write(encoded, header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid)
    except (OSError, ValueError) as exc:
        return _write_failed(calling_ae, counters, exc), 0

    try:
        with write_turn(session_factory), session_factory() as session:
            new = record_instance(
                session,
                header,
                stored,
                calling_ae=calling_ae,
                called_ae=called_ae,
                now=utcnow(),
                reopen_study=reopen,
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
        return int(StoreStatus.OUT_OF_RESOURCES), 0

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
    return int(StoreStatus.SUCCESS), stored.size_bytes


def _write_failed(calling_ae: str, counters: NodeCounters | None, exc: BaseException) -> int:
    _count(counters, "instances_failed")
    metrics.count_rejected("storage.write_failed")
    logger.error(
        "C-STORE from %s: could not write the instance to disk (%s); answering out of resources",
        calling_ae,
        type(exc).__name__,
    )
    return int(StoreStatus.OUT_OF_RESOURCES)


def _undo_write(store: InstanceStore, stored: StoredFile) -> None:
    """Remove a file the database does not know about; a replaced copy stays (its row still points to it)."""
    if stored.replaced:
        return
    try:
        store.remove(stored.relpath)
    except (OSError, ValueError) as exc:
        logger.error("could not remove an unrecorded instance file (%s)", type(exc).__name__)


# --- notification handlers: log and count only --------------------------------------------


def on_requested(
    event: Event,
    policy: CallerPolicy,
    association_log: AssociationLog,
    disk_guard: DiskGuard | None = None,
    counters: NodeCounters | None = None,
    tls: bool = False,
    pauses: IntakePauses | None = None,
) -> None:
    """A-ASSOCIATE-RQ received: refuse unknown callers and a full disk now, before any data comes.

    pynetdicom lets this notification answer the request itself (A-ASSOCIATE-RJ); when we accept,
    the called AE title becomes the association's own, so each of our titles is answered as itself.
    """
    assoc = event.assoc
    primitive = assoc.requestor.primitive
    calling_ae = str(getattr(primitive, "calling_ae_title", "") or "").strip()
    called_ae = str(getattr(primitive, "called_ae_title", "") or "").strip()
    peer_host = str(assoc.requestor.address or "")
    peer_port = assoc.requestor.port
    refusal: Refusal | None = malformed_request(primitive) or policy.check(calling_ae, called_ae, peer_host)
    if refusal is None and pauses is not None and pauses.is_paused(calling_ae):
        refusal = INTAKE_PAUSED
    if refusal is None and disk_guard is not None and not disk_guard.has_room():
        refusal = LOW_DISK
    state = AssociationState(
        id=uuid.uuid4(), calling_ae=calling_ae or "-", called_ae=called_ae or "-", peer_host=peer_host, tls=tls
    )
    if refusal is not None:
        _count(counters, "associations_refused")
        metrics.count_rejected(refusal.code)
        logger.warning(
            "association from %s at %s to %s refused: %s",
            state.calling_ae,
            peer_host,
            state.called_ae,
            refusal.code,
        )
        association_log.opened(state, peer_port, refused=refusal.code)
        state.closed = True
        assoc.radassist = state  # type: ignore[attr-defined]
        assoc.acse.send_reject(refusal.result, refusal.source, refusal.reason)
        assoc.kill()
        return
    assoc.acceptor.ae_title = called_ae
    assoc.radassist = state  # type: ignore[attr-defined]
    association_log.opened(state, peer_port)


def on_accepted(event: Event, counters: NodeCounters | None = None) -> None:
    _count(counters, "associations_accepted")
    logger.info(
        "association accepted from %s at %s to %s",
        _calling_ae(event),
        event.assoc.requestor.address,
        _called_ae(event),
    )


def on_acse_sent(event: Event) -> None:
    """Our A-RELEASE response is on its way: the association ended in a release.

    Decided here, before the response is sent, because the peer closes the connection as soon as
    it has the response, and pynetdicom may report that close (``on_connection_closed``) before
    its association thread reports the release (``on_released``).
    """
    primitive = getattr(event, "primitive", None)
    state = _state(event)
    if state is not None and isinstance(primitive, A_RELEASE) and primitive.result == "affirmative":
        state.outcome = "released"


def on_released(event: Event, counters: NodeCounters | None = None) -> None:
    _count(counters, "associations_released")
    state = _state(event)
    if state is not None:
        state.outcome = "released"
    logger.info("association released by %s", _calling_ae(event))


def on_aborted(
    event: Event, counters: NodeCounters | None = None, association_log: AssociationLog | None = None
) -> None:
    _count(counters, "associations_aborted")
    state = _state(event)
    if state is not None and association_log is not None:
        association_log.aborted(state)
    logger.warning("association with %s aborted", _calling_ae(event))


def on_connection_closed(event: Event, association_log: AssociationLog) -> None:
    """Complete the association's row: when it ended, how, and how many instances it brought."""
    state = _state(event)
    if state is None or state.closed:
        return
    assoc = event.assoc
    association_log.closed(state, "aborted" if assoc.is_aborted else "released" if assoc.is_released else "closed")
    logger.info(
        "association from %s ended (%s): %d stored, %d failed",
        state.calling_ae,
        state.outcome,
        state.stored,
        state.failed,
    )


__all__ = [
    "NodeCounters",
    "handle_echo",
    "handle_store",
    "on_aborted",
    "on_accepted",
    "on_acse_sent",
    "on_connection_closed",
    "on_released",
    "on_requested",
]
