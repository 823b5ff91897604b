"""Study and series ids this process has seen committed, so an association's next instance skips two upserts.

An association sends one study, so after its first instance the study's and the series' ids are
known: :func:`radassist.intake.record.record_instance` skips their upserts and look-ups, and the
SQLite group commit (:mod:`radassist.intake.record_sqlite`) records the instance on its fast path.
Ids never change; a stale one (the row was deleted since) fails the instance insert's foreign key,
which clears the cache and retries.

An id reaches the cache only once the transaction that found it has committed (:func:`stage`,
published by a session's ``after_commit``).  Until then the row may be its own uncommitted insert,
and on PostgreSQL another association's transaction that took the id from the cache would count
its instance in rows its statement cannot see: the instance stored, the study and series counts
one short.  Within the transaction that staged them, :func:`staged` still finds them; when it rolls
back or is closed without a commit, they are dropped.
"""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

Key = tuple[str, str, str]
"""(database, kind, UID): ``(str(engine.url), "study", study UID)`` or ``(…, "series of <study id>", series UID)``."""

_STAGED = "radassist.intake.known_ids"
"""The key of a session's staged ids in ``Session.info``."""


class _IdCache:
    """Committed ids by key, at most ``size`` of them (cleared when full: a new association re-reads two rows)."""

    def __init__(self, size: int = 4096) -> None:
        self._ids: dict[Key, uuid.UUID] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Key) -> uuid.UUID | None:
        return self._ids.get(key)

    def put_all(self, items: dict[Key, uuid.UUID]) -> None:
        with self._lock:
            if len(self._ids) + len(items) > self._size:
                self._ids.clear()
            self._ids.update(items)

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()


_IDS = _IdCache()


def staged(session: Session, key: Key) -> uuid.UUID | None:
    """The id ``session``'s open transaction found for ``key``, or the committed one."""
    found: dict[Key, uuid.UUID] | None = session.info.get(_STAGED)
    return (found.get(key) if found else None) or _IDS.get(key)


def stage(session: Session, key: Key, value: uuid.UUID) -> None:
    """Remember ``value`` for ``key`` once ``session``'s transaction commits (dropped if it rolls back)."""
    session.info.setdefault(_STAGED, {})[key] = value


def forget_all() -> None:
    """Clear the cache: an id in it may be what failed (a study deleted meanwhile)."""
    _IDS.clear()


def known_ids(database: str, study_uid: str, series_uid: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The study's and series' committed ids, cached by an earlier
    :func:`radassist.intake.record.record_instance` in this process on ``database``
    (``str(engine.url)``), or None."""
    study_id = _IDS.get((database, "study", study_uid))
    if study_id is None:
        return None
    series_id = _IDS.get((database, f"series of {study_id}", series_uid))
    return None if series_id is None else (study_id, series_id)


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its transaction has not committed
    found: dict[Key, uuid.UUID] | None = session.info.pop(_STAGED, None)
    if found:
        _IDS.put_all(found)


@event.listens_for(Session, "after_transaction_end")
def _drop(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (and published above), rolled back or closed
        session.info.pop(_STAGED, None)


__all__ = ["Key", "forget_all", "known_ids", "stage", "staged"]
