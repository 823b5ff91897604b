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

With a :class:`~radassist.store.filesystem_sync.FilesystemSync` (``[storage] sync``), the files
come unsynced and the leader's connection commits with ``synchronous=NORMAL``; after the commit
one ``syncfs`` makes the batch's files, their names and the WAL durable together, and only then are
the batch's threads woken.  Each instance is listed in ``unsynced_instances`` by the transaction
that records it, and the leader's next transaction unlists the batches whose flush returned
(:mod:`radassist.intake.unsynced`).  When a flush fails, the batch's instances are answered with
:class:`FlushFailed` (never the general way: their rows exist, their files may not) and stay
listed under a writer token this process no longer uses: the listener undoes their rows, and what
it could not undo waits for the start-up check.

A batch whose instances are all small (``[storage] in_commit_max_bytes``) is made durable by its
commit alone: the leader's connection commits it with ``synchronous=FULL``, the bytes listed with
each instance, and its threads are woken at once; the files follow within a tenth of a second
(:mod:`dicom_node.background_flush`), and the listings are unlisted once that flush has returned.
One cache flush before the Success instead of two (``syncfs`` and the folder's ``fsync``); the
figures are in docs/performance.md.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.background_flush import BackgroundFlush
from radassist.db.engine import write_turn
from radassist.intake import unsynced
from radassist.intake.record_sqlite import Converters, NewInstance, record_new
from radassist.store import filesystem_sync
from radassist.store.filesystem_sync import FilesystemSync

logger = logging.getLogger(__name__)


class FlushFailed(OSError):
    """The batch's rows were committed but the flush that makes its files durable failed: the
    instance (``instance_id``) must be answered with a failure and its rows undone."""

    def __init__(self, instance_id: uuid.UUID, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.instance_id = instance_id


class _Waiting:
    """One instance waiting for the commit that includes it."""

    __slots__ = ("done", "flush_error", "instance_id", "item")

    def __init__(self, item: NewInstance) -> None:
        self.item = item
        self.done = False
        self.instance_id: uuid.UUID | None = None
        """The new instance's id once its batch recorded it; None: not recorded here (the general way)."""
        self.flush_error: OSError | None = None

    def result(self) -> bool:
        if self.flush_error is not None and self.instance_id is not None:
            raise FlushFailed(self.instance_id, self.flush_error)
        return self.instance_id is not None


class GroupCommit:
    """Records the common new instance (:mod:`radassist.intake.record_sqlite`) of one listener process."""

    def __init__(
        self, session_factory: sessionmaker[Session], flush: FilesystemSync | None = None, *, in_commit_max_bytes: int = 0
    ) -> None:
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
        self.flush = flush
        """One ``syncfs`` per batch instead of the files' and the WAL's own syncs; None: those syncs."""
        self._writer = secrets.token_hex(8)
        self._batch = 0
        self._flushed_before = 1
        """Batches before this one had their files flushed by a flush that returned (unlisted next)."""
        self.in_commit_max_bytes = in_commit_max_bytes if flush is not None else 0
        """A batch of instances this small is made durable in its commit (0: never)."""
        self.background: BackgroundFlush | None = None
        """The thread that flushes such batches' files; started by the first of them."""
        self._synchronous_full = False

    @property
    def files_unsynced(self) -> bool:
        """Whether the caller writes the files without syncs (this group commit flushes them)."""
        return self.flush is not None

    def flush_files(self) -> None:
        """Make every file written so far durable (before recording one the general way)."""
        if self.flush is not None:
            self.flush.sync()

    def record(self, item: NewInstance) -> bool:
        """True once ``item``'s rows are committed durably (and, when the files are unsynced, its
        file); False when they were not written (the caller records the instance with
        ``record_instance``); :class:`FlushFailed` when its rows were committed but the flush failed."""
        me = _Waiting(item)
        with self._condition:
            if self._closed:
                return False
            self._queue.append(me)
            while self._leading and not me.done:
                self._condition.wait()
            if me.done:
                return me.result()
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
        return me.result()

    def _commit(self, batch: list[_Waiting]) -> None:
        """Write and commit ``batch`` (in the write turn); on any database error nothing of it is recorded."""
        if self._closed:
            return  # closed while these waited: the general way records them
        self._batch += 1
        in_commit = self._in_commit(batch)
        try:
            cursor = self._cursor()
            self._synchronous(cursor, full=in_commit)
            cursor.execute("BEGIN IMMEDIATE")
            try:
                ids = [self._record(cursor, waiting.item, in_commit=in_commit) for waiting in batch]
                wrote = any(instance_id is not None for instance_id in ids)
                if wrote and self.flush is not None:
                    cursor.execute(*unsynced.confirm_sql(self._writer, self._unlist_before()))
                cursor.execute("COMMIT" if wrote else "ROLLBACK")
            except BaseException:
                self._roll_back(cursor)
                raise
        except Exception as exc:  # noqa: BLE001 - whatever failed, the general way records them
            logger.warning(
                "a group of %d instances goes the general way (%s)", len(batch), type(exc).__name__
            )
            self._discard()
            return
        self.batches += wrote
        if wrote and in_commit:
            self._background_flush().committed(self._batch)
        flush_error = self._flush() if wrote and not in_commit else None
        for waiting, instance_id in zip(batch, ids, strict=True):
            waiting.instance_id, waiting.flush_error = instance_id, flush_error  # the error counts only if recorded

    def _in_commit(self, batch: list[_Waiting]) -> bool:
        """Whether ``batch`` is made durable by its commit: every instance's bytes at most the limit."""
        limit = self.in_commit_max_bytes
        return limit > 0 and all(w.item.data is not None and len(w.item.data) <= limit for w in batch)

    def _synchronous(self, cursor: sqlite3.Cursor, *, full: bool) -> None:
        """The commit syncs the WAL (a batch durable by its commit) or leaves it to the flush."""
        if self.flush is not None and full != self._synchronous_full:
            cursor.execute("PRAGMA synchronous=FULL" if full else "PRAGMA synchronous=NORMAL")
            self._synchronous_full = full

    def _record(self, cursor: sqlite3.Cursor, item: NewInstance, *, in_commit: bool) -> uuid.UUID | None:
        instance_id = record_new(cursor, item, self._convert)
        if instance_id is not None and item.stored.crc32 is not None:
            cursor.execute(
                unsynced.INSERT_SQL,
                (self._convert.uuid(instance_id), item.stored.relpath, item.stored.crc32, self._writer, self._batch,
                 item.data if in_commit else None),
            )  # fmt: skip
        return instance_id

    def _unlist_before(self) -> int:
        """The first batch whose files may not be durable yet: the listings before it go."""
        background = self.background
        return max(self._flushed_before, background.flushed_through + 1 if background is not None else 0)

    def _background_flush(self) -> BackgroundFlush:
        if self.background is None:
            assert self.flush is not None  # in_commit_max_bytes is 0 without one
            self.background = BackgroundFlush(self.flush, failed=self._background_flush_failed)
        return self.background

    def _background_flush_failed(self, _error: OSError) -> None:
        """The batches that flush was for stay listed, with their bytes, for the start-up check."""
        self._writer = secrets.token_hex(8)

    def _flush(self) -> OSError | None:
        """The batch's flush; its error, after which this process lists under a new writer token
        (the failed batch's listings must wait for the start-up check, not the next transaction)."""
        if self.flush is None:
            return None
        try:
            self.flush.sync()
            self._flushed_before = self._batch + 1  # every file written so far, earlier batches' too
        except OSError as exc:
            logger.error(
                "the flush after a commit failed (%s): its instances are undone and answered out of resources",
                exc.strerror,
            )  # fmt: skip
            self._writer = secrets.token_hex(8)
            return exc
        return None

    def _cursor(self) -> sqlite3.Cursor:
        if self._connection is None:
            fairy = self._engine.raw_connection()  # with the engine's pragmas (WAL, FULL, busy timeout)
            fairy.detach()  # ours alone, for the process's life; closed by close()
            connection = fairy.dbapi_connection
            assert isinstance(connection, sqlite3.Connection)
            connection.isolation_level = None  # transactions are begun and ended explicitly
            self._synchronous_full = False
            if self.flush is not None:
                # The commit writes the WAL without its fsync: the batch's flush makes it durable.
                # WAL mode stays safe from corruption (checkpoints still sync).
                connection.execute("PRAGMA synchronous=NORMAL")
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
        """Stop taking instances (they go the general way), unlist what was flushed, close the connection."""
        with self._condition:
            self._closed = True
            while self._leading:
                self._condition.wait()
            if self.background is not None and self.background.close():
                self._flushed_before = self._batch + 1
            if self.flush is not None and self.batches:
                self._unlist_flushed()
            self._discard()

    def _unlist_flushed(self) -> None:
        """Unlist every batch of this writer whose flush returned (a failed one changed the token), so
        the next start-up check has nothing of this process to read back."""
        try:
            with write_turn(self._session_factory):
                cursor = self._cursor()
                cursor.execute(*unsynced.confirm_sql(self._writer, self._unlist_before()))
        except Exception as exc:  # noqa: BLE001 - the start-up check reads them back instead
            logger.info("the last flushed instances stay listed until the next start (%s)", type(exc).__name__)


def group_commit_for(
    session_factory: sessionmaker[Session],
    *,
    sync: str = "each-file",
    instances_dir: Path | None = None,
    in_commit_max_bytes: int = 0,
) -> GroupCommit | None:
    """A group commit for the listener's database when it is a SQLite file; None otherwise (on
    PostgreSQL each instance is committed in its own transaction, as before).  ``sync`` is
    ``[storage] sync``: with ``instances_dir``, the group commit may flush the files itself
    (:func:`radassist.store.filesystem_sync.choose`), and then makes batches of instances of at most
    ``in_commit_max_bytes`` durable in their commit."""
    engine = session_factory.kw.get("bind")
    database = engine.url.database if isinstance(engine, Engine) and engine.dialect.name == "sqlite" else None
    sqlite_file = bool(database) and database != ":memory:" and not str(database).startswith("file:")
    database_folder = Path(str(database)).resolve().parent if sqlite_file else None
    flush = filesystem_sync.choose(sync, instances_dir, database_folder) if instances_dir is not None else None
    if database_folder is None:
        return None
    return GroupCommit(session_factory, flush, in_commit_max_bytes=in_commit_max_bytes)


__all__ = ["FlushFailed", "GroupCommit", "group_commit_for"]
