"""Group commit on SQLite: concurrent C-STOREs of one listener process share a transaction and its fsync.

Each association is served on its own thread, and each instance used to be committed in a
transaction of its own: one fsync of the WAL per instance, taken one after another under the write
turn.  Here an instance's rows go to :meth:`GroupCommit.record`, which does not return until a
commit that includes them is durable (``synchronous=FULL``), so the Success that follows still
follows its own durable commit.  The first thread to arrive leads: once the write turn is its own, it
takes every instance queued so far (those that queued while it waited for the turn included), writes
them in one ``BEGIN IMMEDIATE`` transaction (:func:`radassist.intake.record_sqlite.record_new`),
commits, and wakes their threads; instances that arrive meanwhile queue for the next leader.  One
association alone is always its own leader, with a batch of one and no thread hand-over.

The leader writes on a connection of its own, detached from the engine's pool and used by one
leader at a time, in the process's write turn (:func:`radassist.db.engine.write_turn`).  An
instance the fast path does not cover, and every instance of a batch whose transaction failed,
is answered False: the caller records it the general way (``record_instance``), with its rules,
retries and error statuses, so a failure here never costs an instance more than that detour.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.engine import write_turn
from radassist.intake.record_sqlite import Converters, NewInstance, record_new

logger = logging.getLogger(__name__)


class _Waiting:
    """One instance waiting for the commit that includes it."""

    __slots__ = ("done", "item", "recorded")

    def __init__(self, item: NewInstance) -> None:
        self.item = item
        self.done = False
        self.recorded = False


class GroupCommit:
    """Records the common new instance (:mod:`radassist.intake.record_sqlite`) of one listener process."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        engine = session_factory.kw.get("bind")
        if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
            raise ValueError("group commit is for a SQLite engine")
        self.database = str(engine.url)
        self._session_factory = session_factory
        self._convert = Converters(engine.dialect)
        self._engine = engine
        self._connection: Any = None
        self._condition = threading.Condition()
        self._queue: list[_Waiting] = []
        self._leading = False
        self._closed = False
        self.batches = 0
        """Transactions committed, for the tests and the bench: instances recorded / batches is the group size."""

    def record(self, item: NewInstance) -> bool:
        """True once ``item``'s rows are committed durably; False when they were not written (the
        caller records the instance with ``record_instance``)."""
        me = _Waiting(item)
        with self._condition:
            if self._closed:
                return False
            self._queue.append(me)
            while self._leading and not me.done:
                self._condition.wait()
            if me.done:
                return me.recorded
            self._leading = True
        batch: list[_Waiting] = []
        try:
            with write_turn(self._session_factory):
                # The batch is taken once the turn is ours: whatever queued while another process
                # (or this one's general way) held it joins this commit instead of waiting for the next.
                with self._condition:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        finally:
            with self._condition:
                for waiting in batch:
                    waiting.done = True
                self._leading = False
                self._condition.notify_all()
        return me.recorded

    def _commit(self, batch: list[_Waiting]) -> None:
        """Write and commit ``batch`` (in the write turn); on any database error nothing of it is recorded."""
        if self._closed:
            return  # closed while these waited: the general way records them
        try:
            cursor = self._cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                recorded = [record_new(cursor, waiting.item, self._convert) for waiting in batch]
                cursor.execute("COMMIT" if any(recorded) else "ROLLBACK")
            except BaseException:
                self._roll_back(cursor)
                raise
        except Exception as exc:  # noqa: BLE001 - whatever failed, the general way records them
            logger.warning(
                "a group of %d instances goes the general way (%s)", len(batch), type(exc).__name__
            )
            self._discard()
            return
        self.batches += any(recorded)
        for waiting, was_recorded in zip(batch, recorded, strict=True):
            waiting.recorded = was_recorded

    def _cursor(self) -> sqlite3.Cursor:
        if self._connection is None:
            fairy = self._engine.raw_connection()  # with the engine's pragmas (WAL, FULL, busy timeout)
            fairy.detach()  # ours alone, for the process's life; closed by close()
            connection = fairy.dbapi_connection
            assert isinstance(connection, sqlite3.Connection)
            connection.isolation_level = None  # transactions are begun and ended explicitly
            self._connection = fairy
        cursor: sqlite3.Cursor = self._connection.dbapi_connection.cursor()
        return cursor

    @staticmethod
    def _roll_back(cursor: sqlite3.Cursor) -> None:
        try:
            cursor.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction left to roll back (SQLite ended it with the error)

    def _discard(self) -> None:
        """Drop the connection after an error: the next batch opens a fresh one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                pass

    def close(self) -> None:
        """Stop taking instances (they go the general way) and close the connection."""
        with self._condition:
            self._closed = True
            while self._leading:
                self._condition.wait()
            self._discard()


def group_commit_for(session_factory: sessionmaker[Session]) -> GroupCommit | None:
    """A group commit for the listener's database when it is a SQLite file; None otherwise (on
    PostgreSQL each instance is committed in its own transaction, as before)."""
    engine = session_factory.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return GroupCommit(session_factory)


__all__ = ["GroupCommit", "group_commit_for"]
