"""Write a file so that it either exists whole on disk or not at all.

Temp file in the same folder, fsync, atomic rename, fsync of the folder: after this returns, a
power cut cannot lose the file or leave half of it.  The outputs we produce go through here;
prepared inputs take the same rename without the syncs (:func:`write_atomically`).  Files are 0600
and new folders 0700 (:mod:`radassist.store.private`).  Received instances, which are never
replaced, take a link instead of a rename (:mod:`radassist.store.incoming`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from radassist.store.private import private_dirs


def fsync_dir(folder: Path | str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> int:
    """Atomically replace ``path`` with ``data``, durable once this returns; the number of bytes written."""
    private_dirs(path.parent)
    return write_atomically(path, data, sync=True)


def write_atomically(path: Path, data: bytes, *, sync: bool = False) -> int:
    """Replace ``path`` with ``data`` through a temporary file and a rename, so a reader sees the old
    file or the new one, never half of one (0600).  ``sync``: the file is fsynced before the rename
    and the folder after it, so a power cut cannot lose it either; without, a file that is made
    again when it is missing (prepared inputs) skips both syncs.  The number of bytes written."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            if sync:
                tmp.flush()
                os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)
    return len(data)
