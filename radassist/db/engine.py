"""Engine and session factory from Settings; SQLite gets the pragmas a multi-process service needs."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the listener write while workers and the web app read; busy_timeout makes the
    # processes queue for the single writer instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite files get their parent folder created."""
    if url.startswith("sqlite"):
        from pathlib import Path

        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def make_sessionmaker(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(make_engine(settings.database_url), expire_on_commit=False)


_sqlite_write_turns: dict[str, threading.Lock] = {}
_turns_guard = threading.Lock()


def write_turn(session_factory: sessionmaker[Session]) -> AbstractContextManager[Any]:
    """Hold this while writing through ``session_factory``: one writer at a time per SQLite file.

    SQLite lets one connection write at a time; another that tries waits in SQLite's busy
    handler, which sleeps 1, 2, 5, 10, ... ms between attempts, so parallel associations in one
    listener went no faster than one.  Threads of this process queue on a lock instead and
    write as soon as it is free.  (Listener processes sharing one SQLite file still meet in the
    busy handler: production runs several on PostgreSQL.)  PostgreSQL needs no turn taking.
    """
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
        return nullcontext()
    key = str(bind.url)
    with _turns_guard:
        turn = _sqlite_write_turns.setdefault(key, threading.Lock())
    return turn
