"""What a job's model is shown, kept from its preparation (cpu queue) to its draft (gpu queue) and
after it: the pictures (PNG), their labels, the clinical context, the prompt profile, the RIS order
and the comparison with the priors (:class:`KeptInputs`).

The drafting worker reads a job's inputs from here and nothing else (never the received files), so
it may run on a machine without the listener's storage.  A question about the study is answered from
the same inputs, so the model sees exactly the pictures the draft used and nothing is decoded again.

The store is an interface keyed by job id (:class:`PreparedStore`: save, load, remove, plus one
picture for the page).  Backends only keep named blobs (:mod:`radassist.store.prepared_codec`),
whole or not at all: ``files`` under ``[storage] path``/prepared (owner-only files, the manifest
written last), ``database`` (:mod:`radassist.store.prepared_db`, one transaction) and ``s3``
(:mod:`radassist.store.prepared_s3`, the manifest put last and removed first), chosen by
``[prepared] backend``.  Retention removes a study's inputs with its other files.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping
from typing import Protocol

from sqlalchemy.orm import Session

from radassist.config import PromptProfileSettings, Settings
from radassist.imaging.prepare import PreparedStudy
from radassist.store.prepared_codec import MANIFEST, KeptInputs, decode, encode, encode_inputs, picture_name

logger = logging.getLogger(__name__)


class PreparedStore(Protocol):
    """Where prepared inputs are kept, by job id; any backend keeps the blobs :func:`encode` makes."""

    def save(self, job_id: uuid.UUID, study: PreparedStudy, profile: PromptProfileSettings | None) -> None: ...

    def save_inputs(self, job_id: uuid.UUID, inputs: KeptInputs) -> None:
        """Keep everything the model is shown for ``job_id``, replacing what was kept."""
        ...

    def load(self, job_id: uuid.UUID) -> KeptInputs | None:
        """The kept inputs, or None when there are none (never kept, removed, or not whole)."""
        ...

    def picture(self, job_id: uuid.UUID, index: int) -> bytes | None:
        """One kept picture as PNG bytes (0-based, in the order shown), or None."""
        ...

    def remove(self, job_id: uuid.UUID, *, session: Session | None = None) -> tuple[int, int]:
        """Forget a job's inputs; the number of blobs and bytes removed.  The database backend
        removes them in ``session`` when given (the caller's transaction: SQLite has one writer)."""
        ...


class BlobStore:
    """The part every backend shares: inputs to blobs and back.  A backend writes a set of blobs
    whole or not at all (:meth:`write_blobs`) and reads blobs only while the set is whole."""

    def write_blobs(self, job_id: uuid.UUID, blobs: Mapping[str, bytes]) -> None:
        raise NotImplementedError

    def read_blobs(self, job_id: uuid.UUID, names: Collection[str] | None = None) -> dict[str, bytes] | None:
        """The manifest and ``names`` (all when None) of a whole set; None when there is none."""
        raise NotImplementedError

    def remove(self, job_id: uuid.UUID, *, session: Session | None = None) -> tuple[int, int]:
        raise NotImplementedError

    def save(self, job_id: uuid.UUID, study: PreparedStudy, profile: PromptProfileSettings | None) -> None:
        self.write_blobs(_checked(job_id), encode(study, profile))

    def save_inputs(self, job_id: uuid.UUID, inputs: KeptInputs) -> None:
        self.write_blobs(_checked(job_id), encode_inputs(inputs))

    def load(self, job_id: uuid.UUID) -> KeptInputs | None:
        blobs = self.read_blobs(_checked(job_id))
        if blobs is None or MANIFEST not in blobs:
            return None
        try:
            return decode(blobs[MANIFEST], blobs.__getitem__)
        except KeyError:  # a picture the manifest names is missing: not whole
            return None

    def picture(self, job_id: uuid.UUID, index: int) -> bytes | None:
        name = picture_name(index)
        blobs = self.read_blobs(_checked(job_id), (name,))
        return None if blobs is None else blobs.get(name)


def _checked(job_id: uuid.UUID) -> uuid.UUID:
    if not isinstance(job_id, uuid.UUID):
        raise TypeError('Argument "job_id" must be a UUID.')
    return job_id


def prepared_store(settings: Settings) -> PreparedStore:
    """The store ``[prepared] backend`` names."""
    backend = settings.prepared.backend
    if backend == "database":
        from radassist.store.prepared_db import DatabasePreparedStore

        return DatabasePreparedStore.for_settings(settings)
    if backend == "s3":
        from radassist.store.prepared_s3 import S3PreparedStore

        return S3PreparedStore.for_settings(settings.prepared)
    from radassist.store.prepared_files import FilePreparedStore

    return FilePreparedStore(settings.storage.path / "prepared")


def keep(store: PreparedStore, job_id: uuid.UUID, study: PreparedStudy, profile: PromptProfileSettings | None) -> bool:
    """Save a job's inputs; a failure is logged, never raised: the draft stands without them
    (a question about the study then prepares the pictures again from the stored instances)."""
    try:
        store.save(job_id, study, profile)
    except (OSError, ValueError) as exc:
        logger.warning("the prepared inputs could not be kept (%s)", type(exc).__name__)
        return False
    return True


def __getattr__(name: str) -> object:  # the files backend, by its old import path
    if name == "FilePreparedStore":
        from radassist.store.prepared_files import FilePreparedStore

        return FilePreparedStore
    raise AttributeError(name)


__all__ = ["MANIFEST", "BlobStore", "KeptInputs", "PreparedStore", "decode", "encode", "keep", "picture_name",
           "prepared_store"]
