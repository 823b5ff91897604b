"""The listener's handler table: which pynetdicom event goes to which handler, with which bound arguments.

Intervention events (one handler, returns a status): C-STORE (:mod:`dicom_node.storage`), C-ECHO
(:mod:`dicom_node.verification`).  Notification events (log and count): the association's life
(:mod:`dicom_node.association_events`).  Handlers get what they need as bound arguments, never
from globals or from attributes hung on pynetdicom's objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynetdicom import evt
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.access import CallerPolicy, IntakePauses
from dicom_node.association_events import (
    on_aborted,
    on_accepted,
    on_acse_sent,
    on_connection_closed,
    on_released,
    on_requested,
)
from dicom_node.associations import AssociationLog, AssociationRegistry
from dicom_node.capacity import DiskGuard
from dicom_node.completion_timer import CompletionTimer
from dicom_node.counters import NodeCounters
from dicom_node.group_commit import GroupCommit
from dicom_node.storage import answer_store, handle_store
from dicom_node.verification import handle_echo
from radassist.config import Settings
from radassist.store.instances import InstanceStore


@dataclass(frozen=True)
class ListenerState:
    """What the handlers of one listener process share (both ports)."""

    settings: Settings
    store: InstanceStore
    session_factory: sessionmaker[Session]
    counters: NodeCounters
    policy: CallerPolicy
    registry: AssociationRegistry
    disk_guard: DiskGuard | None = None
    group_commit: GroupCommit | None = None
    completion_timer: CompletionTimer | None = None


def event_handlers(shared: ListenerState, *, tls: bool = False) -> list[Any]:
    """The handler table of one port (``tls``: the DICOM TLS port), each handler with its bound arguments."""
    association_log = AssociationLog(shared.session_factory)
    registry, counters = shared.registry, shared.counters
    return [
        (evt.EVT_REQUESTED, on_requested,
         [shared.policy, association_log, registry, shared.disk_guard, counters, tls,
          IntakePauses(shared.session_factory)]),
        (evt.EVT_C_STORE, answer_store,
         [shared.store, shared.session_factory, shared.settings, counters, shared.disk_guard, registry,
          shared.group_commit, shared.completion_timer]),
        (evt.EVT_C_ECHO, handle_echo, [counters]),
        (evt.EVT_ACCEPTED, on_accepted, [counters]),
        (evt.EVT_ACSE_SENT, on_acse_sent, [registry]),
        (evt.EVT_RELEASED, on_released, [registry, counters]),
        (evt.EVT_ABORTED, on_aborted, [registry, counters, association_log]),
        (evt.EVT_CONN_CLOSE, on_connection_closed, [association_log, registry]),
    ]


__all__ = ["ListenerState", "NodeCounters", "event_handlers", "handle_echo", "handle_store"]
