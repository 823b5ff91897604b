"""What the system page and /metrics know about the parts outside the database: the broker's
queues, the workers, the disk.

Every probe runs with a short timeout in a worker thread and is cached for a few seconds, so a
broker that is down makes the page say so instead of hanging it.  Nothing here raises: a probe
that fails reports ``None`` (unknown) and its error class.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import threading
import time
from typing import Any

from radassist.broker import QUEUES, client, queue_depths
from radassist.config import Settings
from radassist.read.rows import ProbeStatus, WorkerRow

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0
CACHE_S = 5.0


class SystemProbe:
    """One per web app: owns a Celery app for the broker, and caches what it last learnt."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._celery: Any = None
        self._lock = threading.Lock()
        self._cached: tuple[float, ProbeStatus] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="system-probe")

    def celery(self) -> Any:
        with self._lock:
            if self._celery is None:
                self._celery = client(self._settings)
            return self._celery

    def send_task(self, name: str, args: tuple[str, ...], queue: str) -> None:
        self.celery().send_task(name, args=list(args), queue=queue)

    def _queue_depths(self) -> dict[str, int | None]:
        return dict(queue_depths(self.celery(), QUEUES, timeout=PROBE_TIMEOUT_S))

    def _workers(self) -> tuple[WorkerRow, ...] | None:
        if self._settings.broker_url.startswith("sqla+"):
            return None  # no broadcast on this transport: asking would only time out
        inspect = self.celery().control.inspect(timeout=1.0)
        stats = inspect.stats() or {}
        queues = inspect.active_queues() or {}
        active = inspect.active() or {}
        workers = []
        for name, info in sorted(stats.items()):
            pool = info.get("pool", {}) if isinstance(info, dict) else {}
            workers.append(
                WorkerRow(
                    name=name,
                    queues=tuple(q.get("name", "") for q in queues.get(name, [])),
                    # "celery.concurrency.prefork:TaskPool" -> "prefork"
                    pool=str(pool.get("implementation", "")).split(":")[0].rsplit(".", 1)[-1] or None,
                    concurrency=pool.get("max-concurrency"),
                    active=len(active.get(name, [])) if name in active else None,
                )
            )
        return tuple(workers)

    def _call(self, fn: Any) -> tuple[Any, str | None]:
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=PROBE_TIMEOUT_S + 2), None
        except concurrent.futures.TimeoutError:
            return None, "timeout"
        except Exception as exc:  # noqa: BLE001 -- shown on the page, never raised
            logger.warning("system probe failed (%s)", type(exc).__name__)
            return None, type(exc).__name__

    def status(self) -> ProbeStatus:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        depths, queue_error = self._call(self._queue_depths)
        workers, workers_error = self._call(self._workers)
        total: int | None = None
        free: int | None = None
        try:
            usage = shutil.disk_usage(self._settings.storage.path)
            total, free = usage.total, usage.free
        except OSError:
            pass
        status = ProbeStatus(
            queue_depths=depths or dict.fromkeys(QUEUES),
            queue_error=queue_error,
            workers=workers,
            workers_error=workers_error,
            model_name=self._settings.model.name,
            disk_total=total,
            disk_free=free,
        )
        self._cached = (time.monotonic(), status)
        return status

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
