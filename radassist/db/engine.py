"""Engine and session factory from Settings; SQLite gets the pragmas a multi-process service needs.

A SQLite database file is created owner-only (0600) before SQLite opens it, whatever the umask:
SQLite keeps an existing file's mode and gives its WAL and SHM files the same one, and an older
installation's wider files are narrowed when an engine is made.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from radassist.config import Settings
from radassist.store.private import private_file, restrict


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the listener write while workers and the web app read; busy_timeout makes the
    # processes queue for the single writer instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, pooled: bool = True) -> Engine:
    """Create an engine for ``url``; a SQLite file gets its folder (0700) and itself (0600) created.

    ``pooled=False``: no connection is kept between uses, for a thread of a process that forks
    (a forked child must not inherit an open connection to the database server)."""
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            # Never open (and close) a file SQLite may already hold in this process: closing any
            # descriptor of it drops every POSIX lock the process holds on it, and SQLite's WAL
            # bookkeeping with it (another process may then checkpoint and reset the WAL).
            if Path(database).exists():
                restrict(Path(database))
            else:
                private_file(Path(database))
            for suffix in ("-wal", "-shm"):
                restrict(Path(f"{database}{suffix}"))
        pool: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if not pooled:
        return create_engine(url, poolclass=NullPool)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def make_sessionmaker(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(make_engine(settings.database_url), expire_on_commit=False)


class SqliteWriteTurn:
    """One writer at a time per SQLite file: threads queue on a lock, processes on a file lock.

    SQLite lets one connection write at a time; another that tries waits in SQLite's busy
    handler, which sleeps 1, 2, 5, 10, ... ms between attempts, so parallel associations went no
    faster than one.  Here a writer waits instead where the kernel wakes it the moment the turn is
    free: threads of this process on a :class:`threading.Lock`, listener processes on ``flock``
    of a file beside the database (``<database>-turn``).  The file lock is taken on a descriptor
    opened by this process (a forked child opens its own: a descriptor inherited across ``fork``
    shares its lock with the parent, which would let both write at once).  A process killed while
    holding the turn loses it with its descriptors, so a crash cannot leave it taken.

    Writers that do not take the turn (the web app, workers) still meet these in SQLite's busy
    handler, as before; they write a few rows per study, the listener a few per instance.
    """

    def __init__(self, lock_path: Path | None) -> None:
        self._threads = threading.Lock()
        self._lock_path = lock_path
        self._descriptor: int | None = None
        self._opened_by: int | None = None

    def __enter__(self) -> SqliteWriteTurn:
        self._threads.acquire()
        try:
            if self._lock_path is not None:
                fcntl.flock(self._own_descriptor(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._lock_path is not None and self._descriptor is not None:
                fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _own_descriptor(self) -> int:
        """This process's descriptor of the lock file (called with the thread lock held)."""
        assert self._lock_path is not None
        if self._descriptor is None or self._opened_by != os.getpid():
            if self._descriptor is not None:
                # Inherited across fork: closing this copy leaves the parent's lock alone (the lock
                # goes only when every descriptor of the open file is closed); keeping it leaks it.
                os.close(self._descriptor)
            self._descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._opened_by = os.getpid()
        return self._descriptor


_sqlite_write_turns: dict[str, SqliteWriteTurn] = {}
_turns_guard = threading.Lock()


def write_turn(session_factory: sessionmaker[Session]) -> AbstractContextManager[Any]:
    """Hold this while writing through ``session_factory`` (see :class:`SqliteWriteTurn`).

    PostgreSQL needs no turn taking: its row locks queue writers without polling.
    """
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
        return nullcontext()
    key = str(bind.url)
    with _turns_guard:
        turn = _sqlite_write_turns.get(key)
        if turn is None:
            database = bind.url.database
            on_disk = bool(database) and database != ":memory:" and not str(database).startswith("file:")
            lock_path = Path(f"{Path(str(database)).resolve()}-turn") if on_disk else None
            turn = _sqlite_write_turns[key] = SqliteWriteTurn(lock_path)
    return turn
