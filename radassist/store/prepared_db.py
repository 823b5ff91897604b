"""Prepared inputs in the database (``[prepared] backend = "database"``): the ``prepared_blobs`` table.

The natural choice for drafting workers on other machines: they already reach the database, so
nothing else needs sharing.  A job's blobs are replaced in one transaction (whole or not at all),
read in one query, and removed with the job.  Works on SQLite and PostgreSQL.

The store opens its own short sessions: one engine per process and database URL (made after a
fork, never inherited from the parent).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Collection, Mapping

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import PreparedBlob
from radassist.store.prepared import BlobStore
from radassist.store.prepared_codec import MANIFEST

_makers: dict[tuple[int, str], sessionmaker[Session]] = {}
_lock = threading.Lock()


def _sessions(settings: Settings) -> sessionmaker[Session]:
    key = (os.getpid(), settings.database_url)
    with _lock:
        maker = _makers.get(key)
        if maker is None:
            maker = _makers[key] = make_sessionmaker(settings)
    return maker


class DatabasePreparedStore(BlobStore):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @classmethod
    def for_settings(cls, settings: Settings) -> DatabasePreparedStore:
        return cls(_sessions(settings))

    def write_blobs(self, job_id: uuid.UUID, blobs: Mapping[str, bytes]) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            session.execute(delete(PreparedBlob).where(PreparedBlob.job_id == job_id))
            session.add_all(PreparedBlob(job_id=job_id, name=name, data=data, size_bytes=len(data), created_at=now)
                            for name, data in blobs.items())

    def read_blobs(self, job_id: uuid.UUID, names: Collection[str] | None = None) -> dict[str, bytes] | None:
        query = select(PreparedBlob.name, PreparedBlob.data).where(PreparedBlob.job_id == job_id)
        if names is not None:
            query = query.where(PreparedBlob.name.in_([MANIFEST, *names]))
        with self.sessions() as session:
            blobs = {name: bytes(data) for name, data in session.execute(query)}
        return blobs if MANIFEST in blobs else None

    def remove(self, job_id: uuid.UUID, *, session: Session | None = None) -> tuple[int, int]:
        if session is not None:
            return _remove(session, job_id)
        with self.sessions.begin() as own:
            return _remove(own, job_id)


def _remove(session: Session, job_id: uuid.UUID) -> tuple[int, int]:
    count, size = session.execute(
        select(func.count(), func.coalesce(func.sum(PreparedBlob.size_bytes), 0)).where(PreparedBlob.job_id == job_id)
    ).one()
    session.execute(delete(PreparedBlob).where(PreparedBlob.job_id == job_id))
    return int(count), int(size)
