"""What the handlers of one listener process share: made once by the server, bound to each handler.

Handlers take it whole as their bound argument instead of a list of its parts, so a new piece (a
timer, a guard) reaches the handler that needs it without widening every signature on the way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from dicom_node.access import CallerPolicy
from dicom_node.associations import AssociationRegistry
from dicom_node.capacity import DiskGuard
from dicom_node.completion_timer import CompletionTimer
from dicom_node.counters import NodeCounters
from dicom_node.group_commit import GroupCommit
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
    """Refuses intake while free disk space is below the threshold; None: never refuses."""
    group_commit: GroupCommit | None = None
    """SQLite: new instances of concurrent associations share a commit; None: each commits alone."""
    completion_timer: CompletionTimer | None = None
    """Completes a study at the end of its quiet time; None: the sweep does."""


__all__ = ["ListenerState"]
