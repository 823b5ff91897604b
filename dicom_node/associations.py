"""What the listener knows of each association: its state, its slot, and its ``associations`` row.

The row is inserted when the A-ASSOCIATE-RQ is decided and completed when the connection
closes, with the counts the C-STORE handler kept on the association's :class:`AssociationState`.
Two writes per association, none per instance.  Failing to write the log never refuses a sender.

:class:`AssociationRegistry` keeps each pynetdicom association's state (by the association object,
never as an attribute on it) and counts the slots of ``[dicom] max_associations``: a slot is taken
when we decide to accept an A-ASSOCIATE-RQ and given back when the connection closes or the
association's thread ends.  Connections still negotiating hold none
(:mod:`dicom_node.connections` caps those).
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.base import utcnow
from radassist.db.engine import write_turn
from radassist.db.tables import Association

if TYPE_CHECKING:
    from pynetdicom.association import Association as PynetdicomAssociation

logger = logging.getLogger(__name__)

RECENT_STUDIES = 256
"""Studies an association's state remembers, to log each one's first instance at INFO."""


@dataclass
class AssociationState:
    """What one association did so far (kept by :class:`AssociationRegistry`)."""

    id: uuid.UUID
    calling_ae: str
    called_ae: str
    peer_host: str
    tls: bool
    outcome: str = "open"
    reason: str | None = None
    stored: int = 0
    failed: int = 0
    bytes_stored: int = 0
    closed: bool = False
    holds_slot: bool = False
    studies: int = 0
    """How many studies its stored instances belonged to (a study it came back to after
    :data:`RECENT_STUDIES` others counts again)."""
    _recent_studies: OrderedDict[str, None] = field(default_factory=OrderedDict, repr=False)
    """The Study Instance UIDs it stored last, most recent at the end: bounded, for an association
    a router keeps open for days."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # pynetdicom reports an abort and the closed connection on different threads, in either order;
    # deciding the outcome and writing it happen under this lock so the later report cannot be lost.
    _ending: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def first_of_study(self, study_instance_uid: str) -> bool:
        """Whether this is the association's first stored instance of the study (noted as such):
        one INFO line per study, not per instance."""
        with self._lock:
            recent = self._recent_studies
            if study_instance_uid in recent:
                recent.move_to_end(study_instance_uid)
                return False
            recent[study_instance_uid] = None
            if len(recent) > RECENT_STUDIES:
                recent.popitem(last=False)
            self.studies += 1
            return True

    def count(self, ok: bool, size: int = 0) -> None:
        with self._lock:
            if ok:
                self.stored += 1
                self.bytes_stored += size
            else:
                self.failed += 1


class AssociationLog:
    """Writes the ``associations`` rows (best effort), in the write turn like the listener's other
    writes, so they queue with the instances' commits instead of polling SQLite beside them."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def opened(self, state: AssociationState, peer_port: int | None, *, refused: str | None = None) -> None:
        now = utcnow()
        row = Association(
            id=state.id,
            calling_ae_title=state.calling_ae[:16],
            called_ae_title=state.called_ae[:16],
            peer_host=state.peer_host[:64],
            peer_port=peer_port,
            tls=state.tls,
            started_at=now,
            ended_at=now if refused else None,
            outcome="rejected" if refused else "open",
            reason=refused,
            instances_stored=0,
            instances_failed=0,
            bytes_stored=0,
        )
        try:
            with write_turn(self.session_factory), self.session_factory() as session:
                session.add(row)
                session.commit()
        except Exception:  # noqa: BLE001
            logger.warning("could not record an association", exc_info=logger.isEnabledFor(logging.DEBUG))

    def closed(self, state: AssociationState, outcome_if_open: str = "closed") -> None:
        """Complete the row once, when the connection closes; the outcome defaults to ``outcome_if_open``."""
        with state._ending:
            if state.closed:
                return
            if state.outcome == "open":
                state.outcome = outcome_if_open
            state.closed = True
            self._write_end(state)

    def aborted(self, state: AssociationState) -> None:
        """Record an abort, which pynetdicom may report after the connection was closed and written."""
        with state._ending:
            if state.outcome not in ("open", "closed"):
                return
            state.outcome = "aborted"
            if state.closed and state.reason is None:
                self._write_end(state)

    def _write_end(self, state: AssociationState) -> None:
        try:
            with write_turn(self.session_factory), self.session_factory() as session:
                session.execute(
                    update(Association)
                    .where(Association.id == state.id)
                    .values(
                        ended_at=utcnow(),
                        outcome=state.outcome,
                        reason=state.reason,
                        instances_stored=state.stored,
                        instances_failed=state.failed,
                        bytes_stored=state.bytes_stored,
                    )
                )
                session.commit()
        except Exception:  # noqa: BLE001
            logger.warning("could not complete an association record", exc_info=logger.isEnabledFor(logging.DEBUG))


class AssociationRegistry:
    """The state of each association of this listener process, and the slots they hold (thread-safe)."""

    def __init__(self, max_associations: int) -> None:
        self.max_associations = max_associations
        self._states: weakref.WeakKeyDictionary[PynetdicomAssociation, AssociationState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, assoc: PynetdicomAssociation) -> AssociationState | None:
        with self._lock:
            return self._states.get(assoc)

    def refused(self, assoc: PynetdicomAssociation, state: AssociationState) -> None:
        """Keep the state of an association we refuse (it holds no slot)."""
        with self._lock:
            self._states[assoc] = state

    def take_slot(self, assoc: PynetdicomAssociation, state: AssociationState) -> bool:
        """Keep ``state`` with a slot for ``assoc``; False (and nothing kept) when every slot is taken."""
        with self._lock:
            if self._slots_in_use() >= self.max_associations:
                return False
            state.holds_slot = True
            self._states[assoc] = state
            return True

    @property
    def slots_in_use(self) -> int:
        with self._lock:
            return self._slots_in_use()

    def _slots_in_use(self) -> int:
        return sum(
            1 for assoc, state in self._states.items() if state.holds_slot and not state.closed and assoc.is_alive()
        )
