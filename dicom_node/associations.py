"""The association log: one ``associations`` row per association, accepted or refused.

The row is inserted when the A-ASSOCIATE-RQ is decided and completed when the connection
closes, with the counts the C-STORE handler kept on the association's :class:`AssociationState`.
Two writes per association, none per instance.  Failing to write the log never refuses a sender.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.base import utcnow
from radassist.db.tables import Association

logger = logging.getLogger(__name__)


@dataclass
class AssociationState:
    """What one association did so far; attached to the pynetdicom Association as ``radassist``."""

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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # pynetdicom reports an abort and the closed connection on different threads, in either order;
    # deciding the outcome and writing it happen under this lock so the later report cannot be lost.
    _ending: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, ok: bool, size: int = 0) -> None:
        with self._lock:
            if ok:
                self.stored += 1
                self.bytes_stored += size
            else:
                self.failed += 1


class AssociationLog:
    """Writes the ``associations`` rows (best effort)."""

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
            with self.session_factory() as session:
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
            with self.session_factory() as session:
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
