"""The embedded broker (kombu's SQLAlchemy transport on SQLite): made once before workers race for it,
and its delivered messages removed so its file stops growing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from kombu.connection import Connection

from radassist.config import Settings
from radassist.retention.broker import remove_delivered_messages
from radassist.startup import prepare_embedded_broker


def _rows(database: Path) -> list[tuple[int, bool]]:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            return [(int(i), bool(v)) for i, v in connection.execute(sa.text("SELECT id, visible FROM kombu_message"))]
    finally:
        engine.dispose()


def test_workers_starting_together_find_the_broker_made_once(make_settings: Callable[..., Settings],
                                                            tmp_path: Path) -> None:
    """Six processes prepare one fresh broker at the same moment: all succeed, no "already exists"."""
    settings = make_settings()
    go = tmp_path / "go"
    script = textwrap.dedent(f"""\
        import os, time
        from radassist.config import load_settings
        from radassist.startup import prepare_embedded_broker
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        prepare_embedded_broker(load_settings(environ={{"RADASSIST_STORAGE_PATH": {str(settings.storage.path)!r}}}))
        """)
    processes = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE) for _ in range(6)]
    go.touch()
    errors = [process.communicate(timeout=120)[1].decode() for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, errors
    assert not any("already exists" in e for e in errors)
    assert _rows(settings.storage.path / "broker.sqlite3") == []


def test_delivered_messages_are_removed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    prepare_embedded_broker(settings)
    database = settings.storage.path / "broker.sqlite3"
    with Connection(settings.broker_url) as connection:  # type: ignore[no-untyped-call]
        queue = connection.SimpleQueue("io")
        for n in range(5):
            queue.put({"n": n})
        for _ in range(3):
            queue.get(timeout=5).ack()
        queue.close()
    assert [visible for _, visible in _rows(database)] == [False, False, False, True, True]
    assert remove_delivered_messages(settings.broker_url) == 3
    assert [visible for _, visible in _rows(database)] == [True, True]
    assert remove_delivered_messages(settings.broker_url) == 0
    assert remove_delivered_messages("redis://127.0.0.1:6379/0") == 0  # other brokers remove their own
