"""Back-pressure: below the free-disk threshold the node refuses new work instead of failing mid-study.

The check is one ``statvfs`` call, so it runs on every association request and every C-STORE.
A change of condition (low <-> ok) is written to ``node_status`` and the event log, so the
worklist and ops pages can say why studies are not arriving.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.tables import NodeStatus
from radassist.events import EventTag, record_event

logger = logging.getLogger(__name__)

LOW_DISK_CODE = "storage.low_disk"


class DiskGuard:
    """Knows whether the instance store has room, and records when that changes."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], name: str | None = None) -> None:
        self.root: Path = settings.storage.instances_dir
        self.min_free_bytes = settings.storage.min_free_bytes
        self.min_free_percent = settings.storage.min_free_percent
        self.session_factory = session_factory
        self.name = name or f"{socket.gethostname()}:{settings.dicom.port}"[:64]
        self._low: bool | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.min_free_bytes > 0 or self.min_free_percent > 0

    def has_room(self) -> bool:
        """True when free space is above the threshold (or the check is off)."""
        if not self.enabled:
            return True
        try:
            usage = shutil.disk_usage(self.root)
        except OSError:
            return True  # the write itself will fail and answer out of resources
        threshold = max(self.min_free_bytes, int(usage.total * self.min_free_percent / 100))
        low = usage.free < threshold
        if low != self._low:
            self._transition(low, usage.free)
        return not low

    def _transition(self, low: bool, free_bytes: int) -> None:
        with self._lock:
            if low == self._low:
                return
            first = self._low is None
            self._low = low
        if low:
            logger.error("free disk space below the threshold: refusing associations and stores")
        elif not first:
            logger.warning("free disk space back above the threshold: accepting again")
        try:
            with self.session_factory() as session:
                row = session.get(NodeStatus, self.name)
                if row is None:
                    row = NodeStatus(name=self.name)
                    session.add(row)
                row.accepting = not low
                row.reason = LOW_DISK_CODE if low else None
                row.free_bytes = free_bytes
                row.updated_at = utcnow()
                if low or not first:
                    tag = EventTag.NODE_STORAGE_LOW if low else EventTag.NODE_STORAGE_OK
                    record_event(session, tag, node=self.name, free_bytes=free_bytes)
                session.commit()
        except Exception:  # noqa: BLE001 - the status page is best effort; refusing is what matters
            logger.warning("could not record the node status", exc_info=logger.isEnabledFor(logging.DEBUG))

