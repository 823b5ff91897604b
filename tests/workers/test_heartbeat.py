"""A real worker process reports in while it runs, reports its stop, and falls silent when killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import WorkerPresence
from radassist.read.workers import workers_seen
from tests.conftest import wait_until

HEARTBEAT_S = 0.2
LOST_AFTER_S = 1.0


def _start_worker(settings: Settings, name: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env.update({"RADASSIST_STORAGE_PATH": str(settings.storage.path), "RADASSIST_DATABASE_URL": settings.database_url,
                "RADASSIST_QUEUE_WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_S),
                "RADASSIST_QUEUE_WORKER_LOST_AFTER_SECONDS": str(LOST_AFTER_S)})
    return subprocess.Popen(
        [sys.executable, "-m", "radassist", "worker", "--queues", "io", "--pool", "solo", "--name", name],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{name}.log", "wb"),
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_worker_reports_in_until_it_stops_or_is_killed(
    make_settings: Callable[..., Settings], tmp_path: Path, stop: signal.Signals
) -> None:
    from radassist.db.migrate import upgrade

    settings = make_settings(queue_worker_heartbeat_seconds=str(HEARTBEAT_S),
                             queue_worker_lost_after_seconds=str(LOST_AFTER_S))
    upgrade(settings)
    sessions = make_sessionmaker(settings)

    def seen() -> list:  # type: ignore[type-arg]
        with sessions() as session:
            return workers_seen(session, utcnow(), LOST_AFTER_S)

    worker = _start_worker(settings, "beat-test", tmp_path)
    try:
        (first,) = wait_until(seen, timeout=60)
        assert first.name.startswith("beat-test@") and first.queues == ("io",) and first.state == "answering"
        (later,) = wait_until(lambda: [w for w in seen() if w.seen_at > first.seen_at], timeout=10)
        assert later.started_at == first.started_at  # the same run, reporting again
    finally:
        worker.send_signal(stop)
        worker.wait(timeout=60)
    if stop is signal.SIGTERM:
        (last,) = seen()
        assert last.state == "stopped" and last.stopped_at is not None
    else:
        (last,) = wait_until(lambda: [w for w in seen() if w.state == "silent"], timeout=10)
        with sessions() as session:
            row = session.get(WorkerPresence, last.name)
            assert row is not None and row.stopped_at is None  # killed: it never said it stopped
    sessions.kw["bind"].dispose()


def test_after_a_failed_report_the_heartbeat_tries_again_within_a_second(make_settings: Callable[..., Settings]) -> None:
    """A database that was away (here: not yet built) hears from the worker a second after it is
    back, not a whole heartbeat later, so the sweep does not take it for gone."""
    from radassist.db.migrate import upgrade
    from workers.heartbeat import Heartbeat

    settings = make_settings(queue_worker_heartbeat_seconds="30", queue_worker_lost_after_seconds="90")
    heartbeat = Heartbeat(settings, "retry-test@host", ["gpu"])
    heartbeat.start()  # its first report fails: no table yet
    try:
        # Checked before the upgrade: once the table exists, a retry may land while the later
        # migrations still run.
        assert heartbeat._failing, "the first report did not fail"
        upgrade(settings)
        sessions = make_sessionmaker(settings)
        row = wait_until(lambda: _row(sessions, "retry-test@host"), timeout=5, interval=0.1)
        assert row.stopped_at is None and row.queues == "gpu"
    finally:
        heartbeat.stop()
    assert _row(sessions, "retry-test@host").stopped_at is not None  # type: ignore[union-attr]
    sessions.kw["bind"].dispose()


def _row(sessions, name: str) -> WorkerPresence | None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.get(WorkerPresence, name)
