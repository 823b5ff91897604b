"""The files of instances already answered Success, flushed in the background a tenth of a second later.

A small instance's bytes can be made durable in its own commit, listed with its rows in
``unsynced_instances`` (``[storage] in_commit_max_bytes``, :mod:`dicom_node.group_commit`): one
flush of the database's log, against two for the file system's ``syncfs`` and the folder's
``fsync``.  Its Success follows that commit, and its file, written and linked but not synced, is
made durable here: one :class:`~radassist.store.filesystem_sync.FilesystemSync` for every batch
committed in the last :data:`PERIOD`, on a thread of the listener process.  Until then the listing
keeps the bytes, so a power cut in between costs nothing: the start-up check rewrites the file from
them (:mod:`radassist.intake.unsynced`).

What this thread knows is one number, :attr:`BackgroundFlush.flushed_through`: the last batch whose
files a flush that returned without an error has covered.  The group commit's next transaction
unlists the batches up to it.  A flush that fails is reported to ``failed`` (the group commit then
lists under a new writer token, so that the batches it did not cover wait for the start-up check
whatever later flushes report) and the thread goes on with the batches that follow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from radassist.store.filesystem_sync import FilesystemSync

logger = logging.getLogger(__name__)

PERIOD = 0.1
"""Seconds the thread gathers committed batches before one flush: a study is complete only after a
quiet time of seconds, so its files are durable long before anything reads them for a draft."""


class BackgroundFlush:
    """Flushes the files of committed batches (:meth:`committed`) on a thread of its own."""

    def __init__(self, flush: FilesystemSync, *, failed: Callable[[OSError], None], period: float = PERIOD) -> None:
        self._flush = flush
        self._failed = failed
        self._period = period
        self._condition = threading.Condition()
        self._committed = 0
        self._covered = 0
        """The last batch a flush was tried for, whatever its outcome: no flush is retried for it."""
        self._closing = False
        self.flushed_through = 0
        """The last batch whose files are durable (0: none yet)."""
        self.flushes = 0
        """Flushes that returned, for the tests and the bench."""
        self._thread = threading.Thread(target=self._run, name="radassist-background-flush", daemon=True)
        self._thread.start()

    def committed(self, batch: int) -> None:
        """Batch ``batch`` was committed with its files unflushed: flush them within the period."""
        with self._condition:
            self._committed = max(self._committed, batch)
            self._condition.notify()

    def close(self, timeout: float = 30.0) -> bool:
        """Flush what is still pending now and stop the thread; whether every committed batch's files
        are durable (False after a failed flush, or when the flush outlasted ``timeout``)."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive() and self.flushed_through >= self._committed

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._committed <= self._covered and not self._closing:
                    self._condition.wait()
                if self._committed <= self._covered:
                    return  # closing, nothing left
                # Batches committed during the wait join this flush; a stop cuts the wait short.
                self._condition.wait_for(lambda: self._closing, self._period)
                mark = self._committed
            self._flush_through(mark)

    def _flush_through(self, mark: int) -> None:
        try:
            self._flush.sync()
        except OSError as exc:
            logger.error(
                "the background flush of received files failed (%s): the instances it was for stay listed "
                "with their bytes, and their files are rewritten from those at the next start",
                exc.strerror,
            )  # fmt: skip
            self._failed(exc)
        else:
            self.flushes += 1
            self.flushed_through = max(self.flushed_through, mark)
        with self._condition:
            self._covered = max(self._covered, mark)


__all__ = ["PERIOD", "BackgroundFlush"]
