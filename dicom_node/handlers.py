"""The listener's handler table: which pynetdicom event goes to which handler, with which bound arguments.

Intervention events (one handler, returns a status): C-STORE (:mod:`dicom_node.storage`), C-ECHO
(:mod:`dicom_node.verification`).  Notification events (log and count): the association's life
(:mod:`dicom_node.association_events`).  Handlers get what they need as bound arguments, never
from globals or from attributes hung on pynetdicom's objects.
"""

from __future__ import annotations

from typing import Any

from pynetdicom import evt

from dicom_node.access import IntakePauses
from dicom_node.association_events import (
    on_aborted,
    on_accepted,
    on_acse_sent,
    on_connection_closed,
    on_released,
    on_requested,
)
from dicom_node.associations import AssociationLog
from dicom_node.counters import NodeCounters
from dicom_node.listener_state import ListenerState
from dicom_node.storage import answer_store, handle_store
from dicom_node.verification import handle_echo


def event_handlers(shared: ListenerState, *, tls: bool = False) -> list[Any]:
    """The handler table of one port (``tls``: the DICOM TLS port), each handler with its bound arguments."""
    association_log = AssociationLog(shared.session_factory)
    registry, counters = shared.registry, shared.counters
    return [
        (evt.EVT_REQUESTED, on_requested,
         [shared.policy, association_log, registry, shared.disk_guard, counters, tls,
          IntakePauses(shared.session_factory)]),
        (evt.EVT_C_STORE, answer_store, [shared]),
        (evt.EVT_C_ECHO, handle_echo, [counters]),
        (evt.EVT_ACCEPTED, on_accepted, [counters]),
        (evt.EVT_ACSE_SENT, on_acse_sent, [registry]),
        (evt.EVT_RELEASED, on_released, [registry, counters]),
        (evt.EVT_ABORTED, on_aborted, [registry, counters, association_log]),
        (evt.EVT_CONN_CLOSE, on_connection_closed, [association_log, registry]),
    ]


__all__ = ["ListenerState", "NodeCounters", "event_handlers", "handle_echo", "handle_store"]
