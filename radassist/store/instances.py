"""Received instances on disk: written durably before the C-STORE is answered, never overwritten.

A file is written in its final folder without a name (or under a temporary one where the file
system cannot: :mod:`radassist.store.incoming`), fsynced, and linked into place, then the folder is
fsynced: after a crash a path holds a complete file or nothing.  (On a file system without a journal
the file is fsynced once more after its link, for its link count: :mod:`radassist.store.journal`.)
The listener may instead leave both syncs to one flush of the whole file system after its commit
(``write(sync=False)``, :mod:`radassist.store.filesystem_sync`); the link still comes after the last
byte is written.  Paths come from SHA-256 hashes of the UIDs: a UID is sender data and may hold
anything (``../``, NUL, 200 characters); its hash is always a safe file name.

A stored file is never replaced.  When the path of an instance is taken, the new bytes are
compared with the file there: the same bytes are the same instance sent again (nothing is
written); other bytes are a revision, kept beside the first under a name made from their own
hash.  So what a recorded row points to cannot change under it, whatever arrives later under the
same UIDs, and :func:`radassist.intake.record.record_instance` decides, with the rows in view,
whether the new file is recorded or refused (and then removed by the caller).

Folders are created owner-only (0700) and files are 0600 (:mod:`radassist.store.private`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from radassist.store.durable import fsync_dir
from radassist.store.incoming import Incoming, unnamed_files_work
from radassist.store.journal import journals_metadata
from radassist.store.private import DIR_MODE

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_FOLDERS_REMEMBERED = 4096


@dataclass(frozen=True)
class StoredFile:
    """Where an instance landed, relative to the store root, and how big it is."""

    relpath: str
    size_bytes: int
    replaced: bool = False
    """True when the same bytes were already stored at ``relpath``: the file is not this write's own
    (undoing the write must leave it)."""
    root: Path | None = field(default=None, compare=False)
    """The store's root folder (None for a description made by hand, e.g. in a test)."""
    crc32: int | None = None
    """The CRC-32 of the bytes written when they were written without syncs (``write(sync=False)``):
    not durable until the caller's flush, and listed with that checksum until then
    (:mod:`radassist.intake.unsynced`); None when the write was synced."""

    def in_place(self) -> bool:
        """Whether the file is still where it landed (retention may have removed its study's folder
        since); False without a ``root``.  A plain string, not a ``Path``: once per received instance."""
        return self.root is not None and os.path.exists(f"{self.root}/{self.relpath}")


def _uid_hash(uid: str) -> str:
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()


class InstanceStore:
    """The folder of received instances (``[storage] path``/instances)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._resolved_root: Path | None = None
        self._folders: set[str] = set()
        """Folders this store created or found, so each instance's write need not look them up."""
        self._unnamed: bool | None = None
        """Whether new files start unnamed (:mod:`radassist.store.incoming`): tried at the first
        write; False once the file system refused one."""
        self._journaled: bool | None = None
        """Whether the store's file system journals its metadata (:mod:`radassist.store.journal`):
        read at the first synced write."""

    @property
    def resolved_root(self) -> Path:
        """The root with symlinks resolved, once: ``resolve`` costs a system call per path component."""
        if self._resolved_root is None:
            self._resolved_root = self.root.resolve()
        return self._resolved_root

    def relpath_for(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        """The relative path of an instance's first copy; deterministic per SOP instance."""
        return f"{self.study_folder(study_uid)}/{_uid_hash(series_uid)}/{self._sop_name(sop_uid)}.dcm"

    def study_folder(self, study_uid: str) -> str:
        """The relative folder holding every file of a study (what retention removes)."""
        if not isinstance(study_uid, str) or not study_uid:
            raise ValueError("study_uid must be a non-empty string")
        study = _uid_hash(study_uid)
        return f"{study[:2]}/{study}"

    @staticmethod
    def _sop_name(sop_uid: str) -> str:
        if not isinstance(sop_uid, str) or not sop_uid:
            raise ValueError("sop_uid must be a non-empty string")
        return _uid_hash(sop_uid)

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

    def write(
        self, data: bytes | BinaryIO, study_uid: str, series_uid: str, sop_uid: str, *, sync: bool = True
    ) -> StoredFile:
        """Write one instance durably; never replaces a stored file (see the module docstring).

        ``sync=False`` (bytes only): the file is written and linked but neither it nor its folder is
        fsynced; the caller makes it durable with one flush for several files
        (:mod:`radassist.store.filesystem_sync`), and the result carries the bytes' CRC-32.
        On any failure nothing written is left and the ``OSError`` propagates.
        """
        if not isinstance(series_uid, str) or not series_uid:
            raise ValueError("series_uid must be a non-empty string")
        relpath = self.relpath_for(study_uid, series_uid, sop_uid)
        # Built from hex digests only, so it cannot leave the root: no need for path()'s resolve.
        # Plain strings and os calls: this runs once per received instance, and pathlib's and
        # tempfile's Python cost more than the system calls on a small instance.
        folder, _, name = f"{self.resolved_root}/{relpath}".rpartition("/")
        checksum: int | None = None
        if not sync:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("an unsynced write takes bytes (its CRC-32 is recorded)")
            checksum = zlib.crc32(data) & 0xFFFFFFFF
        with self._incoming(folder) as incoming:
            size = _write_all(incoming.fd, data)
            if sync:
                os.fsync(incoming.fd)
            stored = self._place(incoming, folder, name, relpath, size)
            if sync:
                if incoming.unnamed and not stored.replaced and not self._journals():
                    os.fsync(incoming.fd)  # its new link count: the folder's fsync does not write it here
                incoming.sync_folder()
                return stored
        return dataclasses.replace(stored, crc32=checksum)

    def _journals(self) -> bool:
        if self._journaled is None:
            self._journaled = journals_metadata(self.resolved_root)
        return self._journaled

    def _incoming(self, folder: str) -> Incoming:
        """A new owner-only file in ``folder`` (created, with its parents, when missing), unnamed
        where the file system allows.  Folders known to exist are not looked at again; one removed
        since (retention) is made anew."""
        try:
            return self._open_incoming(self._made(folder))
        except FileNotFoundError:  # removed since it was made (retention): made again, once
            self._folders.discard(folder)
            return self._open_incoming(self._made(folder))

    def _made(self, folder: str) -> str:
        """``folder``, created (with its parents) unless this store already made or found it."""
        if folder not in self._folders:
            self._makedirs(Path(folder))
            if len(self._folders) >= _FOLDERS_REMEMBERED:
                self._folders.clear()
            self._folders.add(folder)
        return folder

    def _open_incoming(self, folder: str) -> Incoming:
        if self._unnamed is None:
            self._unnamed = unnamed_files_work(folder)
            if not self._unnamed:
                logger.info("unnamed files cannot be linked in the instance store: temporary names instead")
        if self._unnamed:
            try:
                return Incoming(folder, unnamed=True)
            except NotImplementedError:
                logger.info("the instance folder's file system has no unnamed files: temporary names instead")
                self._unnamed = False
        return Incoming(folder, unnamed=False)

    def _place(self, incoming: Incoming, folder: str, name: str, relpath: str, size: int) -> StoredFile:
        """Link the written file to its name; a taken name is compared, never replaced."""
        try:
            incoming.link(name)
            return StoredFile(relpath, size, root=self.resolved_root)
        except FileExistsError:
            pass
        written, final = Path(incoming.readable_path), Path(folder, name)
        if _same_bytes(written, final):
            return StoredFile(relpath, size, replaced=True, root=self.resolved_root)
        revision = f"{final.stem}.{_file_sha256(written)[:16]}.dcm"
        revision_relpath = relpath.rsplit("/", 1)[0] + "/" + revision
        try:
            incoming.link(revision)
        except FileExistsError:
            # Named by the content's hash: the same revision, stored before.
            return StoredFile(revision_relpath, size, replaced=True, root=self.resolved_root)
        return StoredFile(revision_relpath, size, root=self.resolved_root)

    def remove(self, relpath: str) -> None:
        """Delete a stored file (used to undo a write whose database record failed or was refused)."""
        target = self.path(relpath)
        target.unlink(missing_ok=True)
        try:
            fsync_dir(target.parent)
        except OSError:
            logger.warning("could not fsync the folder after removing a stored instance")

    def _makedirs(self, folder: Path) -> None:
        """Create ``folder`` (0700) and fsync each parent whose entries changed, so the new path
        survives a crash."""
        missing: list[Path] = []
        current = folder
        while not current.exists():
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir(mode=DIR_MODE)
            except FileExistsError:
                # A concurrent association created it first; it must be a folder for us to go on.
                if not path.is_dir():
                    raise
            else:
                os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
            fsync_dir(path.parent)


def _write_all(fd: int, data: bytes | BinaryIO) -> int:
    """Write ``data`` (bytes, or a binary stream read to its end) to ``fd``; the number of bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        with os.fdopen(os.dup(fd), "wb") as out:
            shutil.copyfileobj(data, out, _CHUNK)
            return out.tell()
    view = memoryview(data).cast("B")
    written = 0
    while written < len(view):
        written += os.write(fd, view[written:])
    return written


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as left, b.open("rb") as right:
        while True:
            chunk = left.read(_CHUNK)
            if chunk != right.read(_CHUNK):
                return False
            if not chunk:
                return True


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
