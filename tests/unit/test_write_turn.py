"""Writers to one SQLite file take turns, across threads and processes (radassist.db.engine.write_turn)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
from contextlib import nullcontext
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from radassist.db.engine import SqliteWriteTurn, make_engine, write_turn

REPO = Path(__file__).resolve().parents[2]


def test_sqlite_writers_share_one_turn_per_file(tmp_path: Path) -> None:
    first = sessionmaker(make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}"))
    again = sessionmaker(make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}"))  # another engine, same file
    other = sessionmaker(make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}"))
    turn = write_turn(first)
    assert isinstance(turn, SqliteWriteTurn)
    assert write_turn(again) is turn
    assert write_turn(other) is not turn


def test_postgresql_writers_do_not_take_turns(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        assert isinstance(write_turn(sessionmaker(engine)), nullcontext)
    finally:
        engine.dispose()


def test_another_process_waits_for_the_turn(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    other_process = textwrap.dedent(f"""
        import sys
        from sqlalchemy.orm import sessionmaker
        from radassist.db.engine import make_engine, write_turn
        turn = write_turn(sessionmaker(make_engine({url!r})))
        print("waiting", flush=True)
        with turn:
            print("writing", flush=True)
    """)
    with write_turn(sessionmaker(make_engine(url))):
        child = subprocess.Popen(
            [sys.executable, "-c", other_process], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "waiting\n"
        try:
            child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        assert child.poll() is None, "the other process wrote while this one held the turn"
    out, _ = child.communicate(timeout=30)
    assert out == "writing\n"
    assert child.returncode == 0


def _try_turn_in_forked_child(turn: SqliteWriteTurn, go: Connection, answer: Connection) -> None:
    import threading

    taken = threading.Event()

    def take() -> None:
        with turn:
            taken.set()

    go.recv()
    threading.Thread(target=take, daemon=True).start()
    answer.send(taken.wait(0.5))


def test_a_forked_child_does_not_share_the_parents_turn(tmp_path: Path) -> None:
    """A descriptor inherited across fork shares its flock: the child must open its own."""
    turn = write_turn(sessionmaker(make_engine(f"sqlite:///{tmp_path / 'forked.sqlite3'}")))
    assert isinstance(turn, SqliteWriteTurn)
    with turn:  # the parent opens its descriptor before the fork
        pass
    go_receive, go_send = multiprocessing.Pipe(duplex=False)
    answer_receive, answer_send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_try_turn_in_forked_child, args=(turn, go_receive, answer_send)
    )
    child.start()  # forked while nobody holds the turn
    with turn:
        go_send.send(True)
        took_it = answer_receive.recv()
    child.join(10)
    assert took_it is False, "the forked child took the turn the parent held"
