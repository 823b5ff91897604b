"""Files and folders only their owner can read: what RadAssist writes holds patient data or secrets.

Every folder RadAssist creates is 0700 and every file 0600, whatever the umask of the process
that creates it: the received instances, the databases (SQLite's main file, WAL and SHM take the
main file's mode), the embedded broker, produced outputs and keys.  A file or folder that already
exists with wider bits is narrowed when the service meets it (:func:`restrict`), so an installation
made before this rule gets owner-only modes at its next start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dirs(folder: Path) -> Path:
    """Create ``folder`` and any missing parent as 0700 (umask ignored); returns ``folder``.

    Parents that already exist are left as they are: only what this call creates is ours to set.
    """
    missing: list[Path] = []
    current = Path(folder)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise
            continue
        os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
    return Path(folder)


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists as an owner-only file (created empty if absent); returns it.

    Used before a library (SQLite, kombu) creates a file itself with the umask's mode: SQLite keeps
    an existing file's mode and gives its WAL and SHM files the same.
    """
    private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def restrict(path: Path) -> None:
    """Narrow an existing file to 0600 or folder to 0700 if it is wider; absent paths are skipped.

    Paths owned by another user are left alone (changing them would fail, and they are not ours).
    """
    with contextlib.suppress(FileNotFoundError):
        status = path.stat()
        if status.st_uid != os.geteuid():
            return
        wanted = DIR_MODE if path.is_dir() else FILE_MODE
        if status.st_mode & 0o777 & ~wanted:
            os.chmod(path, wanted)


def create_once(path: Path, content: bytes) -> bytes:
    """Write ``content`` to a new owner-only file at ``path`` unless one exists; return what ``path`` holds.

    Several processes of one installation may start at once: the file is written whole under a
    temporary name and linked into place, which fails if another process got there first, so no
    reader ever sees a half-written file, and every process ends up with the same content.
    """
    private_dirs(path.parent)
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    restrict(path)
    return path.read_bytes()
