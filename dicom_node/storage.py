"""The Storage Service Class as SCP (PS3.4 Annex B): C-STORE, answered Success only when nothing can be lost.

``handle_store`` answers Success only after the instance is fsynced on disk **and** its rows are
committed; any other outcome gets a named failure status from :mod:`dicom_node.statuses` and
leaves no file behind that the database does not know about.  A refusal by intake
(``RejectedInput``), whether the header is unusable or the rows refuse the instance (a SOP
Instance UID already stored for another study or patient), is answered the same way: its status,
a ``study:instance:rejected`` event with its code, a count, a log line without patient data.

The file is written before its transaction, so no database lock is held across an fsync, and the
instance store never replaces a stored file (the same bytes are the same file; other bytes are a
revision beside it): the rows then decide, and a file they refuse is removed unless it was already
recorded, so a refused re-send leaves the stored file as it was.  Handlers receive what they need as
bound arguments: no globals.

Logs carry the calling AE title, sizes, study handles and surrogate ids: never UIDs above DEBUG,
never patient attributes, never a library message that might quote the data set.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom.events import Event
from sqlalchemy.orm import Session

from dicom_node import completion_timer
from dicom_node.associations import AssociationState
from dicom_node.capacity import LOW_DISK_CODE
from dicom_node.counters import NodeCounters, count
from dicom_node.group_commit import FlushFailed, GroupCommit
from dicom_node.listener_state import ListenerState
from dicom_node.part10 import part10_stream
from dicom_node.statuses import REJECTION_STATUS, StoreStatus, store_response
from radassist import metrics
from radassist.db.base import utcnow
from radassist.db.engine import write_turn
from radassist.errors import RejectedInput
from radassist.events import EventTag, record_event
from radassist.identifiers import study_handle
from radassist.intake.header import InstanceHeader, parse_header
from radassist.intake.record import instance_patient_key, record_instance
from radassist.intake.record_sqlite import new_instance
from radassist.intake.sop_classes import is_image_sop_class
from radassist.intake.unsynced import forget
from radassist.logging import log_context
from radassist.pipelines import pipeline_for
from radassist.prefetch.start import moved_prior
from radassist.store.instances import InstanceStore, StoredFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _StoreRequest:
    """One received instance and what the node needs to keep it."""

    encoded: bytes
    header: InstanceHeader
    calling_ae: str
    called_ae: str
    reopen_study: bool
    started: float


def answer_store(event: Event, shared: ListenerState) -> int | Dataset:
    """The EVT_C_STORE handler: :func:`handle_store`'s status, with its Error Comment on failure."""
    return store_response(handle_store(event, shared))


def handle_store(event: Event, shared: ListenerState) -> int:
    """C-STORE: parse the header, keep the received bytes durably, commit the rows; the status.

    With ``shared.group_commit`` (SQLite) the common new instance is committed together with those
    of the process's other associations (:mod:`dicom_node.group_commit`); the rest as before.
    """
    started = time.monotonic()
    calling_ae = str(event.assoc.requestor.ae_title).strip() or "-"
    state = shared.registry.get(event.assoc)
    counters = shared.counters
    if shared.disk_guard is not None and not shared.disk_guard.has_room():
        _tally(state, counters, "instances_failed")
        metrics.count_rejected(LOW_DISK_CODE)
        logger.warning("C-STORE from %s refused: free disk space below the threshold (0xA700)", calling_ae)
        return int(StoreStatus.OUT_OF_RESOURCES)
    try:
        status, size = _store(event, shared, state, calling_ae, started)
    except Exception as exc:
        _tally(state, counters, "instances_failed")
        metrics.count_rejected("node.unexpected")
        logger.error(
            "C-STORE from %s failed unexpectedly (%s)",
            calling_ae,
            type(exc).__name__,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        return int(StoreStatus.PROCESSING_FAILURE)
    if state is not None:
        state.count(status == StoreStatus.SUCCESS, size)
    return status


def _tally(state: AssociationState | None, counters: NodeCounters, name: str) -> None:
    if state is not None:
        state.count(False)
    count(counters, name)


def _store(
    event: Event, shared: ListenerState, state: AssociationState | None, calling_ae: str, started: float
) -> tuple[int, int]:
    """The status to answer and the number of bytes stored (0 when nothing was)."""
    header: InstanceHeader | None = None
    try:
        encoded = part10_stream(event)
        header = _parse(encoded, str(event.context.transfer_syntax))
        _check_command(event, header)
    except RejectedInput as exc:
        return _rejected(exc.code, header, calling_ae, shared), 0
    # Every line logged about this instance, here and in intake, names its study by the same handle
    # as the workers' lines: one grep follows a study from C-STORE to the RIS's ACK.
    with log_context(study=study_handle(header.study_instance_uid)):
        return _keep(event, header, encoded, shared, state, calling_ae, started)


def _keep(
    event: Event,
    header: InstanceHeader,
    encoded: bytes,
    shared: ListenerState,
    state: AssociationState | None,
    calling_ae: str,
    started: float,
) -> tuple[int, int]:
    """Write and record a parsed instance; the status and the bytes stored."""
    settings, counters = shared.settings, shared.counters
    logger.debug("C-STORE of SOP instance %s in study %s", header.sop_instance_uid, header.study_instance_uid)
    called_ae = str(event.assoc.acceptor.ae_title).strip()
    arrival = _StoreRequest(
        encoded=encoded,
        header=header,
        calling_ae=calling_ae,
        called_ae=called_ae,
        reopen_study=(is_image_sop_class(header.sop_class_uid) or pipeline_for(settings, called_ae).draft_non_image)
        and not moved_prior(settings, getattr(event.request, "MoveOriginatorApplicationEntityTitle", None)),
        started=started,
    )
    try:
        new, stored = _write_then_record(arrival, shared)
    except RejectedInput as exc:
        return _rejected(exc.code, header, calling_ae, shared), 0
    except _NotKept as exc:
        count(counters, "instances_failed")
        return exc.status, 0
    completion_timer.note_instance(shared.completion_timer, header.study_instance_uid, called_ae)
    count(counters, "instances_stored" if new else "instances_duplicate")
    metrics.INSTANCES_RECEIVED.inc()
    _log_stored(header, stored, new, state, calling_ae, started)
    return int(StoreStatus.SUCCESS), stored.size_bytes


def _log_stored(
    header: InstanceHeader, stored: StoredFile, new: bool, state: AssociationState | None, calling_ae: str,
    started: float,
) -> None:
    """At INFO, an association's first instance of each study; the others at DEBUG.  A CT of 2,000
    slices is one line, not 2,000 (each cost the listener some 12 µs), and the association's end
    says how many it stored; the study's handle still leads a grep from C-STORE to the RIS's ACK."""
    level = logging.INFO if state is None or state.first_of_study(header.study_instance_uid) else logging.DEBUG
    if logger.isEnabledFor(level):
        logger.log(
            level,
            "stored %s instance of study %s from %s (%d bytes, %.0f ms)",
            "a new" if new else "a re-sent",
            study_handle(header.study_instance_uid),
            calling_ae,
            stored.size_bytes,
            (time.monotonic() - started) * 1000,
        )


class _NotKept(Exception):
    """The instance could not be kept (disk or database); ``status`` says so to the sender."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _record(session: Session, arrival: _StoreRequest, stored: StoredFile) -> bool:
    return record_instance(
        session,
        arrival.header,
        stored,
        calling_ae=arrival.calling_ae,
        called_ae=arrival.called_ae,
        now=utcnow(),
        reopen_study=arrival.reopen_study,
    )


def _recorded_in_group(group_commit: GroupCommit, arrival: _StoreRequest, stored: StoredFile) -> bool:
    """True once the group commit recorded the instance (a new one, of the common case); False when
    it must be recorded the general way."""
    item = new_instance(
        group_commit.database,
        arrival.header,
        stored,
        patient_key=instance_patient_key(arrival.header, stored),
        calling_ae=arrival.calling_ae,
        reopen_study=arrival.reopen_study,
        now=utcnow(),
        data=arrival.encoded if stored.crc32 is not None else None,
    )
    return item is not None and group_commit.record(item)


def _write_then_record(arrival: _StoreRequest, shared: ListenerState) -> tuple[bool, StoredFile]:
    """The file is durable before the transaction starts, and removed if the rows refuse it (unless
    it is the same file an earlier, recorded copy of the instance already holds).

    With one flush per group (``group_commit.files_unsynced``) the file is written without syncs:
    the group commit flushes it after its commit, and an instance it does not record is flushed
    here before the general way records it, so that way's order (file, then rows) holds."""
    header, store, session_factory, group_commit = (
        arrival.header, shared.store, shared.session_factory, shared.group_commit)
    unsynced = group_commit is not None and group_commit.files_unsynced
    try:
        stored = store.write(
            arrival.encoded, header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid,
            sync=not unsynced,
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        raise _NotKept(_write_failed(arrival.calling_ae, exc)) from None
    try:
        if group_commit is not None and _recorded_in_group(group_commit, arrival, stored):
            return True, stored
        if unsynced and group_commit is not None:
            group_commit.flush_files()
        with write_turn(session_factory), session_factory() as session:
            new = _record(session, arrival, stored)
            session.commit()
    except FlushFailed as exc:
        # Recorded, but not known durable: its rows are undone like a crash's (what cannot be stays
        # listed for the start-up check) and the sender's re-send is stored afresh.
        forget(session_factory, store, exc.instance_id, reason="the flush after its commit failed")
        raise _NotKept(_write_failed(arrival.calling_ae, exc)) from None
    except RejectedInput:
        _undo_write(store, stored)
        raise
    except OSError as exc:  # the flush before the general way: nothing was recorded
        _undo_write(store, stored)
        raise _NotKept(_write_failed(arrival.calling_ae, exc)) from None
    except Exception as exc:
        _undo_write(store, stored)
        raise _NotKept(_record_failed(arrival.calling_ae, exc)) from None
    return new, stored


def _parse(encoded: bytes, transfer_syntax_uid: str) -> InstanceHeader:
    try:
        return parse_header(encoded, transfer_syntax_uid)
    except RejectedInput:
        raise
    except Exception:
        logger.debug("undecodable data set", exc_info=True)
        raise RejectedInput("the data set could not be decoded", code="dicom.undecodable") from None


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
            "the data set's SOP Class UID differs from the presentation context", code="dicom.sop_class_mismatch"
        )
    if affected_class and header.sop_class_uid != affected_class:
        raise RejectedInput("the data set's SOP Class UID differs from the command's", code="dicom.sop_class_mismatch")
    if affected_instance and header.sop_instance_uid != affected_instance:
        raise RejectedInput(
            "the data set's SOP Instance UID differs from the command's", code="dicom.instance_conflict"
        )


def _rejected(code: str, header: InstanceHeader | None, calling_ae: str, shared: ListenerState) -> int:
    """Count, log and record a refusal by intake; the status the sender gets."""
    status = int(REJECTION_STATUS.get(code, StoreStatus.CANNOT_UNDERSTAND))
    study = study_handle(header.study_instance_uid) if header is not None else "-"
    count(shared.counters, "instances_rejected")
    metrics.count_rejected(code)
    logger.warning("C-STORE from %s rejected: %s (study %s, status 0x%04X)", calling_ae, code, study, status)
    # Best effort: a rejection shows on the timeline, but failing to note it changes nothing.  In
    # the write turn like the listener's other writes: outside it, SQLite's busy handler polls
    # with growing sleeps and can keep losing to the writers that queue there, while the sender
    # waits for this answer.
    try:
        with write_turn(shared.session_factory), shared.session_factory() as session:
            record_event(session, EventTag.INSTANCE_REJECTED, code=code, calling_ae=calling_ae, status=status, study=study)
            session.commit()
    except Exception:
        logger.warning("could not record a rejected instance in the database", exc_info=logger.isEnabledFor(logging.DEBUG))
    return status


def _write_failed(calling_ae: str, exc: BaseException) -> int:
    metrics.count_rejected("storage.write_failed")
    logger.error(
        "C-STORE from %s: could not write the instance to disk (%s); answering out of resources",
        calling_ae,
        type(exc).__name__,
    )
    return int(StoreStatus.OUT_OF_RESOURCES)


def _record_failed(calling_ae: str, exc: BaseException) -> int:
    metrics.count_rejected("db.write_failed")
    logger.error(
        "C-STORE from %s: could not record the instance (%s); answering out of resources",
        calling_ae,
        type(exc).__name__,
        exc_info=logger.isEnabledFor(logging.DEBUG),
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


__all__ = ["answer_store", "handle_store"]
