"""Several listener processes on one port: the first starts the others, replaces one that dies, stops them.

The first process opens the listening socket(s) and hands them to the others
(:class:`~dicom_node.balance.SharedListener`); the least busy process accepts each association.
A process that dies (a crash, an OOM kill) is logged and replaced, at most once per
:data:`RESTART_AFTER_SECONDS` each; if the first process is killed, the others stop within a
second instead of holding the port against a restart.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from dicom_node.balance import SharedListener
from radassist.config import Settings

if TYPE_CHECKING:
    from dicom_node.acceptor import NodeServer

logger = logging.getLogger(__name__)

RESTART_AFTER_SECONDS = 10.0
"""A listener process that died is replaced, but not sooner than this after its previous start."""
SHUTDOWN_GRACE_SECONDS = 10.0


class ListenerProcesses:
    """The listener processes other than this one: started, replaced when one dies, stopped."""

    def __init__(self, settings: Settings, shared: SharedListener) -> None:
        self._settings = settings
        self._shared = shared
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[int, multiprocessing.process.BaseProcess] = {}
        self._started_at: dict[int, float] = {}
        for index in range(1, settings.dicom.listener_processes):
            self._start(index)

    def _start(self, index: int) -> None:
        process = self._context.Process(
            target=_child_main, args=(self._settings, self._shared, index), name=f"dicom-listener-{index}"
        )
        process.start()
        self._running[index] = process
        self._started_at[index] = time.monotonic()

    def replace_dead(self) -> bool:
        """Start a new process in place of one that exited (a crash, an OOM kill); always go on serving."""
        for index, process in list(self._running.items()):
            if process.is_alive() or time.monotonic() - self._started_at[index] < RESTART_AFTER_SECONDS:
                continue
            logger.error("listener process %d exited (code %s); starting a new one", index, process.exitcode)
            self._shared.load(index).stop_serving()  # its last count no longer makes the others stand back
            self._start(index)
        return True

    def stop(self) -> None:
        for process in self._running.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self._running.values():
            process.join(SHUTDOWN_GRACE_SECONDS + 5)


def _child_main(settings: Settings, shared: SharedListener, process_index: int) -> None:
    from radassist.logging import configure_logging

    configure_logging(settings.logging.level)
    parent = os.getppid()

    def parent_alive() -> bool:
        """A listener orphaned by a killed first process stops: it would hold the port against a restart."""
        if os.getppid() == parent:
            return True
        logger.error("the first listener process is gone; listener process %d stops", process_index)
        return False

    serve_until_signal(settings, shared, process_index, every_second=parent_alive)


def keep_start_up_out_of_collections() -> None:
    """Take what start-up built out of the garbage collector's sight (``gc.freeze``).

    pynetdicom's server runs a full ``gc.collect()`` every 60 connections (its workaround for
    association threads it saw left uncollected), and a full collection walks every object the
    process holds: some 127,000 in a started listener (pydicom's dictionaries, SQLAlchemy,
    pynetdicom, ours), 74-84 ms on the bench VM with the GIL held, while no association of the
    process is answered.  What start-up built lives as long as the process, so it need not
    be walked: once frozen, a collection walks only what was made since.
    """
    gc.freeze()


def serve_until_signal(
    settings: Settings,
    shared: SharedListener | None,
    process_index: int,
    *,
    every_second: Callable[[], bool] | None = None,
) -> None:
    """Serve until a signal, or until ``every_second`` (called once a second) returns False."""
    from dicom_node.server import start_listener, stop_listener

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s received, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server: NodeServer | None = start_listener(settings, shared=shared, process_index=process_index)
        assert server is not None
        keep_start_up_out_of_collections()
        try:
            while not stop.wait(1.0):
                if every_second is not None and not every_second():
                    break
        finally:
            stop_listener(server)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["ListenerProcesses", "keep_start_up_out_of_collections", "serve_until_signal"]
