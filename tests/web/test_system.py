"""The system probe against RabbitMQ: queue depths from the broker, workers that answer a ping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable

from radassist.config import Settings
from radassist.web.system import SystemProbe
from tests.conftest import wait_until


def test_queue_depths_and_workers_on_rabbitmq(make_settings: Callable[..., Settings], rabbitmq_url: str,
                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(queue_broker_url=rabbitmq_url)
    probe = SystemProbe(settings)
    try:
        empty = probe.status()
        assert empty.queue_error is None
        assert empty.workers == ()  # nobody answers yet
        for _ in range(3):  # no drafting worker: these wait in the gpu queue
            probe.send_task("radassist.draft_study", (str(uuid.uuid4()),), "gpu")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
        env.update({"RADASSIST_QUEUE_BROKER_URL": rabbitmq_url, "RADASSIST_STORAGE_PATH": str(tmp_path / "w"),
                    "RADASSIST_DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}"})
        # A worker starts only on a database with the current schema.
        subprocess.run([sys.executable, "-m", "radassist", "db", "upgrade"], env=env, check=True, capture_output=True)
        worker = subprocess.Popen(
            [sys.executable, "-m", "radassist", "worker", "--queues", "io", "--pool", "solo", "--name", "probe-test"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            def answered() -> SystemProbe | None:
                fresh = SystemProbe(settings)  # no cache
                status = fresh.status()
                fresh.close()
                return status if status.workers else None  # type: ignore[return-value]

            status = wait_until(answered, timeout=60, interval=1)
            assert status.queue_depths["gpu"] == 3
            (info,) = status.workers
            assert info.name.startswith("probe-test@")
            assert info.queues == ("io",)
            assert info.pool == "solo"
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    finally:
        probe.close()
