"""Association life: who may associate (on the A-ASSOCIATE-RQ), then notifications that log and count.

``on_requested`` decides every request before any data is accepted, in this order: a request that
breaks PS3.8, an unknown or unallowed caller (:mod:`dicom_node.access`), an admin's pause, a full
disk, and last every association slot taken (``[dicom] max_associations``, counted by
:class:`~dicom_node.associations.AssociationRegistry`).  A refusal is an A-ASSOCIATE-RJ with the
PS3.8 reason a sender's log can show; every request, accepted or refused, gets its
``associations`` row.  The other handlers only log, count and complete that row.
"""

from __future__ import annotations

import logging
import uuid

from pynetdicom.events import Event
from pynetdicom.pdu_primitives import A_RELEASE

from dicom_node.access import (
    INTAKE_PAUSED,
    LOW_DISK,
    TOO_MANY_ASSOCIATIONS,
    CallerPolicy,
    IntakePauses,
    Refusal,
    malformed_request,
)
from dicom_node.associations import AssociationLog, AssociationRegistry, AssociationState
from dicom_node.capacity import DiskGuard
from dicom_node.counters import NodeCounters, count
from dicom_node.pdu_framing import _Guarded
from radassist import metrics

logger = logging.getLogger(__name__)


def _calling_ae(event: Event) -> str:
    return str(event.assoc.requestor.ae_title).strip() or "-"


def on_requested(
    event: Event,
    policy: CallerPolicy,
    association_log: AssociationLog,
    registry: AssociationRegistry,
    disk_guard: DiskGuard | None = None,
    counters: NodeCounters | None = None,
    tls: bool = False,
    pauses: IntakePauses | None = None,
) -> None:
    """A-ASSOCIATE-RQ received: refuse it now (A-ASSOCIATE-RJ) or take a slot for it.

    pynetdicom lets this notification answer the request itself; when we accept, the called AE
    title becomes the association's own, so each of our titles is answered as itself.
    """
    assoc = event.assoc
    primitive = assoc.requestor.primitive
    calling_ae = str(getattr(primitive, "calling_ae_title", "") or "").strip()
    called_ae = str(getattr(primitive, "called_ae_title", "") or "").strip()
    peer_host = str(assoc.requestor.address or "")
    state = AssociationState(
        id=uuid.uuid4(), calling_ae=calling_ae or "-", called_ae=called_ae or "-", peer_host=peer_host, tls=tls
    )
    refusal: Refusal | None = malformed_request(primitive) or policy.check(calling_ae, called_ae, peer_host)
    if refusal is None and pauses is not None and pauses.is_paused(calling_ae):
        refusal = INTAKE_PAUSED
    if refusal is None and disk_guard is not None and not disk_guard.has_room():
        refusal = LOW_DISK
    if refusal is None and not registry.take_slot(assoc, state):
        refusal = TOO_MANY_ASSOCIATIONS
    if refusal is None:
        assoc.acceptor.ae_title = called_ae
        association_log.opened(state, assoc.requestor.port)
        _complete_row_when_closed(event, state, association_log)
        return
    count(counters, "associations_refused")
    metrics.count_rejected(refusal.code)
    logger.warning(
        "association from %s at %s to %s refused: %s", state.calling_ae, peer_host, state.called_ae, refusal.code
    )
    association_log.opened(state, assoc.requestor.port, refused=refusal.code)
    state.closed = True
    registry.refused(assoc, state)
    assoc.acse.send_reject(refusal.result, refusal.source, refusal.reason)
    assoc.kill()


def _complete_row_when_closed(event: Event, state: AssociationState, association_log: AssociationLog) -> None:
    """Complete the association's row when its connection closes, also when pynetdicom does not report
    it to us: the connection closed before this request was decided (pynetdicom reported it before
    the association had a state), or pynetdicom's reactor thread ended on an error."""
    assoc = event.assoc

    def closed() -> None:
        association_log.closed(state, "aborted" if assoc.is_aborted else "released" if assoc.is_released else "closed")

    sock = getattr(assoc.dul.socket, "socket", None)
    if isinstance(sock, _Guarded):
        sock.connection.on_close(closed)
    elif sock is None:
        closed()


def on_accepted(event: Event, counters: NodeCounters | None = None) -> None:
    count(counters, "associations_accepted")
    logger.info(
        "association accepted from %s at %s to %s",
        _calling_ae(event),
        event.assoc.requestor.address,
        str(event.assoc.acceptor.ae_title).strip(),
    )


def on_acse_sent(event: Event, registry: AssociationRegistry) -> None:
    """Our A-RELEASE response is on its way: the association ended in a release.

    Decided here, before the response is sent, because the peer closes the connection as soon as
    it has the response, and pynetdicom may report that close (``on_connection_closed``) before
    its association thread reports the release (``on_released``).
    """
    primitive = getattr(event, "primitive", None)
    if isinstance(primitive, A_RELEASE) and primitive.result == "affirmative":
        state = registry.get(event.assoc)
        if state is not None:
            state.outcome = "released"


def on_released(event: Event, registry: AssociationRegistry, counters: NodeCounters | None = None) -> None:
    count(counters, "associations_released")
    state = registry.get(event.assoc)
    if state is not None:
        state.outcome = "released"
    logger.info("association released by %s", _calling_ae(event))


def on_aborted(
    event: Event,
    registry: AssociationRegistry,
    counters: NodeCounters | None = None,
    association_log: AssociationLog | None = None,
) -> None:
    count(counters, "associations_aborted")
    state = registry.get(event.assoc)
    if state is not None and association_log is not None:
        association_log.aborted(state)
    logger.warning("association with %s aborted", _calling_ae(event))


def on_connection_closed(event: Event, association_log: AssociationLog, registry: AssociationRegistry) -> None:
    """Complete the association's row (when it ended, how, how many instances it brought); its slot is free."""
    state = registry.get(event.assoc)
    if state is None or state.closed:
        return
    assoc = event.assoc
    association_log.closed(state, "aborted" if assoc.is_aborted else "released" if assoc.is_released else "closed")
    logger.info(
        "association from %s ended (%s): %d stored, %d failed, %d studies",
        state.calling_ae,
        state.outcome,
        state.stored,
        state.failed,
        state.studies,
    )


__all__ = [
    "on_aborted",
    "on_accepted",
    "on_acse_sent",
    "on_connection_closed",
    "on_released",
    "on_requested",
]
