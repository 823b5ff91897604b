"""Writers to one SQLite file take turns on a lock in this process (radassist.db.engine.write_turn)."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from radassist.db.engine import make_engine, write_turn


def test_sqlite_writers_share_one_turn_per_file(tmp_path: Path) -> None:
    first = sessionmaker(make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}"))
    again = sessionmaker(make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}"))  # another engine, same file
    other = sessionmaker(make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}"))
    turn = write_turn(first)
    assert isinstance(turn, type(threading.Lock()))
    assert write_turn(again) is turn
    assert write_turn(other) is not turn


def test_postgresql_writers_do_not_take_turns(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        assert isinstance(write_turn(sessionmaker(engine)), nullcontext)
    finally:
        engine.dispose()
