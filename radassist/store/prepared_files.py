"""Prepared inputs as files (``[prepared] backend = "files"``): ``<root>/<first two hex digits>/<job id>/``.

For one machine, or machines sharing the data folder.  Each blob is written to a temporary file
and renamed into place (owner-only 0600 files, 0700 folders), the manifest last, and removed
first: a job's inputs are there whole or not at all.  They are not fsynced: they are made again
from the received instances whenever they are missing or unreadable (the drafting worker sends
such a job back to be prepared; a question prepares its pictures again), so a power cut costs a
preparation, never a draft.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path

from sqlalchemy.orm import Session

from radassist.store.durable import fsync_dir, write_atomically
from radassist.store.prepared import BlobStore
from radassist.store.prepared_codec import MANIFEST
from radassist.store.private import private_dirs


class FilePreparedStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, job_id: uuid.UUID) -> Path:
        if not isinstance(job_id, uuid.UUID):
            raise TypeError('Argument "job_id" must be a UUID.')
        return self.root / job_id.hex[:2] / str(job_id)

    def write_blobs(self, job_id: uuid.UUID, blobs: Mapping[str, bytes]) -> None:
        folder = private_dirs(self.folder(job_id))
        (folder / MANIFEST).unlink(missing_ok=True)  # the inputs being replaced are not whole until the end
        for name, data in blobs.items():
            if name != MANIFEST:
                write_atomically(folder / name, data)
        write_atomically(folder / MANIFEST, blobs[MANIFEST])

    def read_blobs(self, job_id: uuid.UUID, names: Collection[str] | None = None) -> dict[str, bytes] | None:
        folder = self.folder(job_id)
        try:
            blobs = {MANIFEST: (folder / MANIFEST).read_bytes()}
            wanted = [p.name for p in folder.iterdir() if not p.name.startswith(".")] if names is None else names
        except (FileNotFoundError, NotADirectoryError):
            return None
        for name in wanted:
            with contextlib.suppress(FileNotFoundError):
                blobs[name] = (folder / name).read_bytes()
        return blobs

    def remove(self, job_id: uuid.UUID, *, session: Session | None = None) -> tuple[int, int]:
        folder = self.folder(job_id)
        if not folder.is_dir():
            return 0, 0
        files = size = 0
        manifest = folder / MANIFEST
        for path in [manifest, *(p for p in folder.iterdir() if p != manifest)]:  # no longer whole, first
            with contextlib.suppress(FileNotFoundError):
                size += path.lstat().st_size
                path.unlink()
                files += 1
        with contextlib.suppress(OSError):
            folder.rmdir()
            fsync_dir(folder.parent)
        return files, size
