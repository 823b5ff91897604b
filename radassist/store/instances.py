"""Received instances on disk: written durably before the C-STORE is answered.

A file is written to a temporary name in its final folder, fsynced, renamed over its final name
and the folder fsynced, so after a crash a path holds either the old complete file or the new
complete file, never a torn one.  Paths come from SHA-256 hashes of the UIDs: a UID is sender
data and may hold anything (``../``, NUL, 200 characters); its hash is always a safe file name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from radassist.store.durable import fsync_dir

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    """Where an instance landed, relative to the store root, and how big it is."""

    relpath: str
    size_bytes: int
    replaced: bool = False
    """True when an earlier copy of the same SOP instance was overwritten."""


def _uid_hash(uid: str) -> str:
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()


class InstanceStore:
    """The folder of received instances (``[storage] path``/instances)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._resolved_root: Path | None = None

    @property
    def resolved_root(self) -> Path:
        """The root with symlinks resolved, once: ``resolve`` costs a system call per path component."""
        if self._resolved_root is None:
            self._resolved_root = self.root.resolve()
        return self._resolved_root

    def relpath_for(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        """The relative path an instance is (or would be) stored at; deterministic per SOP instance."""
        for name, uid in (("study_uid", study_uid), ("series_uid", series_uid), ("sop_uid", sop_uid)):
            if not isinstance(uid, str) or not uid:
                raise ValueError(f"{name} must be a non-empty string")
        study = _uid_hash(study_uid)
        return f"{study[:2]}/{study}/{_uid_hash(series_uid)}/{_uid_hash(sop_uid)}.dcm"

    def path(self, relpath: str) -> Path:
        """The absolute path of ``relpath``; refuses anything that would leave the store root."""
        candidate = Path(relpath)
        if candidate.is_absolute() or ".." in candidate.parts or not relpath:
            raise ValueError("relpath must be a relative path inside the store")
        root = self.resolved_root
        full = (root / candidate).resolve()
        if full != root and root not in full.parents:
            raise ValueError("relpath must be a relative path inside the store")
        return full

    def write(self, data: bytes | BinaryIO, study_uid: str, series_uid: str, sop_uid: str) -> StoredFile:
        """Write one instance durably (temp file, fsync, atomic rename, fsync folder).

        Re-writing the same SOP instance replaces the earlier copy atomically.  On any failure the
        temporary file is removed and the ``OSError`` propagates.
        """
        relpath = self.relpath_for(study_uid, series_uid, sop_uid)
        # Built from hex digests only, so it cannot leave the root: no need for path()'s resolve.
        final = self.resolved_root / relpath
        self._makedirs(final.parent)
        replaced = final.exists()
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".incoming-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(final.parent)
        return StoredFile(relpath=relpath, size_bytes=size, replaced=replaced)

    def remove(self, relpath: str) -> None:
        """Delete a stored file (used to undo a write whose database record failed)."""
        target = self.path(relpath)
        target.unlink(missing_ok=True)
        try:
            fsync_dir(target.parent)
        except OSError:
            logger.warning("could not fsync the folder after removing a stored instance")

    def _makedirs(self, folder: Path) -> None:
        """Create ``folder`` and fsync each parent whose entries changed, so the new path survives a crash."""
        missing: list[Path] = []
        current = folder
        while not current.exists():
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                # A concurrent association created it first; it must be a folder for us to go on.
                if not path.is_dir():
                    raise
            fsync_dir(path.parent)
