"""One flush for a group of received instances: ``syncfs(2)`` on the file systems of the files and the database.

With ``[storage] sync = "each-file"`` an instance takes three flushes before its Success, one after
another: the file's fsync, its folder's fsync (the new name) and the WAL's fsync at the commit.
Each waits for the disk to empty its write cache, and on one association nothing else happens
meanwhile.  ``syncfs`` writes back everything dirty on one file system (the file's bytes and inode,
the folder's new entry, SQLite's WAL pages) and flushes the disk's cache once, so the listener
writes the file, links it, commits the rows without a sync (``synchronous=NORMAL``, still safe from
corruption in WAL mode) and then calls :meth:`FilesystemSync.sync` before it answers.

What this changes in the crash story: three ordered flushes made the file durable before its row;
one flush orders nothing within itself, so a power cut during it can leave a committed row whose
file is missing or partial.  That instance was never answered Success (the answer follows the
sync), so its sender still holds it.  Such rows are listed in ``unsynced_instances`` with the
file's CRC-32 until a later sync covers them; :mod:`radassist.intake.unsynced` checks the listed
files at start-up and removes the rows of those that did not survive.

``syncfs`` alone does not end with the disk's cache flushed on every file system.  Linux's
``sync_filesystem`` asks the file system to flush the disk (``->sync_fs``) and only then writes the
block device's remaining dirty buffers.  On ext4 without a journal (and ext2) the file's inode is
among them: the data written back into blocks allocated unwritten are converted to written at I/O
completion, after the first metadata write, so the inode that maps the file's bytes reaches the disk
after the flush (traced with the block layer's events: the file's inode-table block is written
again once the cache flush has completed).  A power cut before the next flush would keep a file
that reads as zeros, for an instance already answered Success.  So each :meth:`FilesystemSync.sync`
ends with ``fsync`` on the folder it flushed: nothing is dirty by then, so on ext4 it is one cache
flush, which covers every write ``syncfs`` made, those after its own flush included.  File systems
with a log (ext4 with its journal, XFS, btrfs) had already made their metadata durable there; the
``fsync`` costs them at most one more cache flush.

Fenced here: the C call (ctypes: the standard library has no ``syncfs``), the start-up check
(Linux 5.8 or later, where ``syncfs`` reports write-back errors; before, it returned 0 after a
failed write-back) and the switch, ``[storage] sync``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import platform
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from radassist.errors import ConfigError
from radassist.store.durable import fsync_dir

logger = logging.getLogger(__name__)

REPORTS_ERRORS_SINCE = (5, 8)
"""The first Linux whose ``syncfs`` returns write-back errors (commit 735e4ae5ba28)."""


def unavailable_reason(release: str | None = None) -> str | None:
    """Why one ``syncfs`` cannot stand for the per-file syncs here; None when it can."""
    if platform.system() != "Linux":
        return f"syncfs is Linux's, this is {platform.system()}"
    release = release if release is not None else platform.release()
    match = re.match(r"(\d+)\.(\d+)", release)
    if match is None or (int(match[1]), int(match[2])) < REPORTS_ERRORS_SINCE:
        return f"Linux {release} does not report write-back errors from syncfs (5.8 or later needed)"
    if _syncfs() is None:
        return "the C library has no syncfs"
    return None


def _syncfs() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int,)
    function.restype = ctypes.c_int
    syncfs: Callable[[int], int] = function
    return syncfs


def choose(mode: str, instances_dir: Path, database_folder: Path | None) -> FilesystemSync | None:
    """``[storage] sync`` for a listener: a :class:`FilesystemSync` over the instances' folder and the
    SQLite file's (``database_folder``; None: the database is not a SQLite file), or None for the
    per-file syncs.  ``ConfigError`` when ``filesystem`` was asked for and cannot be had, so the
    listener does not start on a promise it cannot keep."""
    if mode == "each-file":
        return None
    reason = (
        unavailable_reason() if database_folder is not None
        else "the database is not a SQLite file (PostgreSQL commits on its own)"
    )  # fmt: skip
    if reason is not None:
        if mode == "filesystem":
            raise ConfigError(f'[storage] sync = "filesystem" is not possible here: {reason}')
        logger.info("each received file is synced on its own: %s", reason)
        return None
    try:
        return FilesystemSync([instances_dir, *([database_folder] if database_folder is not None else [])])
    except OSError as exc:
        if mode == "filesystem":
            raise ConfigError(f'[storage] sync = "filesystem": cannot open or fsync the folders to flush ({exc.strerror})') from exc
        logger.info("each received file is synced on its own: the folders to flush could not be opened or fsynced")
        return None


class FilesystemSync:
    """``syncfs`` on every file system that holds one of ``folders`` (one call per file system).

    Each :meth:`sync` opens the folders anew (a few microseconds): nothing to close, so a listener
    that stops while a write waits for its flush cannot leave that write unflushed."""

    def __init__(self, folders: Iterable[Path]) -> None:
        """``OSError`` when a folder cannot be opened, or cannot be fsynced (some file systems refuse a
        folder's ``fsync``, and every flush ends with one): the listener then syncs each file instead."""
        function = _syncfs()
        if function is None:
            raise OSError(errno.ENOSYS, "the C library has no syncfs")
        self._syncfs = function
        self._folders: list[str] = []
        devices: set[int] = set()
        for folder in folders:
            device = os.stat(folder).st_dev
            if device not in devices:
                devices.add(device)
                self._folders.append(str(folder))
                fsync_dir(folder)

    @property
    def file_systems(self) -> int:
        """How many file systems each :meth:`sync` flushes (one when files and database share one)."""
        return len(self._folders)

    def sync(self) -> None:
        """Write back and flush every file system; ``OSError`` when one reports a write-back error."""
        for folder in self._folders:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                if self._syncfs(fd) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"syncfs failed: {os.strerror(code)}")
                os.fsync(fd)  # the cache flush after syncfs's last writes (see the module's docstring)
            finally:
                os.close(fd)


__all__ = ["REPORTS_ERRORS_SINCE", "FilesystemSync", "choose", "unavailable_reason"]
