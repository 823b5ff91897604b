"""A received instance on its way into the store: written and synced before it has a name.

Where the file system can (Linux's ``O_TMPFILE``: ext4, XFS, btrfs, tmpfs), the bytes go to an
unnamed file in the instance's folder, are fsynced there, and get their one name by ``linkat``
only then.  So nothing half-written ever has a name, a crash leaves no temporary file behind, and
the folder changes once per instance (the link) instead of three times (create, link and unlink
of a temporary name).  On the bench VM that made a small instance's durable write about a tenth
of the listener's time shorter (docs/performance.md).

Where it cannot (another system, a file system without ``O_TMPFILE``, no ``/proc``: tried at the
store's first write, :func:`unnamed_files_work`), a named temporary file
``.incoming-<pid>-<n>.part`` in the same folder does the same job with the two extra changes of the
folder, and is removed whatever happens.  A probe that fails for any reason (a full disk too)
settles on temporary names for the process's life: slower by a tenth, never wrong.

The folder is opened once per instance and that descriptor serves the create, the link and the
folder's fsync.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os

from radassist.store.private import FILE_MODE

_NAMED_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
"""A new owner-only file, never opened through a symbolic link, not inherited by child processes."""
_UNNAMED_FLAGS = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}
"""What ``open(O_TMPFILE)`` fails with where the kernel or the file system lacks it."""
_FD_LINKS = "/proc/self/fd"
"""Where ``linkat`` finds an unnamed file by its descriptor."""
_numbers = itertools.count()


def unnamed_files_work(folder: str) -> bool:
    """Whether an unnamed file can be made in ``folder`` and linked to a name there: tried once, at
    a store's first write, so a system that has ``O_TMPFILE`` but cannot link it (no ``/proc``, a
    sandbox that refuses ``linkat`` through it) uses temporary names from the start instead of
    failing every instance."""
    if not hasattr(os, "O_TMPFILE"):
        return False
    probe = f".unnamed-probe-{os.getpid()}-{next(_numbers)}"
    try:
        with Incoming(folder, unnamed=True) as incoming:
            os.write(incoming.fd, b"probe")
            incoming.link(probe)
    except (OSError, NotImplementedError):
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, probe))
    return True


class Incoming:
    """One instance's file in ``folder`` until it is linked to its name (:meth:`link`); then closed
    (:meth:`close`), which also removes a temporary name.  Use as a context manager."""

    def __init__(self, folder: str, *, unnamed: bool) -> None:
        """Open the file; ``FileNotFoundError`` when ``folder`` is missing, ``NotImplementedError``
        when ``unnamed`` was asked for and the file system has no unnamed files."""
        self._folder = folder
        self._folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._temporary: str | None = None
        try:
            self.fd = self._unnamed() if unnamed else self._named()
        except BaseException:
            os.close(self._folder_fd)
            raise

    def _unnamed(self) -> int:
        try:
            return os.open(".", _UNNAMED_FLAGS, FILE_MODE, dir_fd=self._folder_fd)
        except OSError as exc:
            if exc.errno in _NOT_SUPPORTED:
                raise NotImplementedError("no unnamed files on this file system") from exc
            raise

    def _named(self) -> int:
        for _attempt in range(100):
            name = f".incoming-{os.getpid()}-{next(_numbers)}.part"
            try:
                fd = os.open(name, _NAMED_FLAGS, FILE_MODE, dir_fd=self._folder_fd)
            except FileExistsError:
                continue  # left by a process of the same id before a crash: the next number
            self._temporary = name
            return fd
        raise FileExistsError("no free temporary file name in the instance folder")

    @property
    def unnamed(self) -> bool:
        """Whether the file was made without a name (its first link gives it its only one)."""
        return self._temporary is None

    @property
    def readable_path(self) -> str:
        """A path that opens the bytes written so far (to compare them with a stored file)."""
        return f"{_FD_LINKS}/{self.fd}" if self._temporary is None else f"{self._folder}/{self._temporary}"

    def link(self, name: str) -> None:
        """Give the file ``name`` in its folder; ``FileExistsError`` when the name is taken."""
        if self._temporary is None:
            os.link(f"{_FD_LINKS}/{self.fd}", name, dst_dir_fd=self._folder_fd, follow_symlinks=True)
        else:
            os.link(self._temporary, name, src_dir_fd=self._folder_fd, dst_dir_fd=self._folder_fd)

    def sync_folder(self) -> None:
        """Make the folder's entries (the new name) durable."""
        os.fsync(self._folder_fd)

    def close(self) -> None:
        try:
            os.close(self.fd)
            if self._temporary is not None:
                try:
                    os.unlink(self._temporary, dir_fd=self._folder_fd)
                except FileNotFoundError:
                    pass
        finally:
            os.close(self._folder_fd)

    def __enter__(self) -> Incoming:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


__all__ = ["Incoming", "unnamed_files_work"]
