"""What a job's model was shown, kept after its draft: the pictures (PNG), their labels, the clinical
context and the prompt profile.

A question about the study is answered from these, so the model sees exactly the pictures the
draft used and nothing is decoded again.  The store is an interface of three calls keyed by job id
(:class:`PreparedStore`: save, load, remove, plus one picture for the page); what is kept is a set
of named blobs (:func:`encode` / :func:`decode`), so a database or object-store backend only has
to keep bytes under a name.  The filesystem backend keeps them under ``[storage] path``/prepared,
owner-only (0600 files, 0700 folders), and the manifest is written last: a job's inputs are there
whole or not at all.  Retention removes them with the study's other files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from radassist.config import PromptProfileSettings, Settings
from radassist.imaging.context import ClinicalContext
from radassist.imaging.prepare import PreparedStudy
from radassist.store.durable import fsync_dir, write_durably

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class KeptInputs:
    """A job's prepared study and the profile its prompt used, as kept after the draft."""

    study: PreparedStudy
    profile: PromptProfileSettings | None


class PreparedStore(Protocol):
    """Where prepared inputs are kept, by job id; any backend keeps the blobs :func:`encode` makes."""

    def save(self, job_id: uuid.UUID, study: PreparedStudy, profile: PromptProfileSettings | None) -> None: ...

    def load(self, job_id: uuid.UUID) -> KeptInputs | None:
        """The kept inputs, or None when there are none (never kept, or removed)."""
        ...

    def picture(self, job_id: uuid.UUID, index: int) -> bytes | None:
        """One kept picture as PNG bytes (0-based, in the order shown), or None."""
        ...

    def remove(self, job_id: uuid.UUID) -> tuple[int, int]:
        """Forget a job's inputs; the number of files and bytes removed."""
        ...


def picture_name(index: int) -> str:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1000:
        raise ValueError('Argument "index" must be an integer from 0 to 999.')
    return f"picture-{index:03d}.png"


def encode(study: PreparedStudy, profile: PromptProfileSettings | None) -> dict[str, bytes]:
    """The named blobs that keep ``study`` and ``profile``: one PNG per picture, then the manifest."""
    blobs: dict[str, bytes] = {}
    for index, image in enumerate(study.images):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        blobs[picture_name(index)] = buffer.getvalue()
    manifest: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "pictures": len(study.images),
        "labels": list(study.labels),
        "context": dataclasses.asdict(study.context),
        "source_sop_instance_uids": list(study.source_sop_instance_uids),
        "notes": list(study.notes),
        "series_chosen": study.series_chosen,
        "lateralities": sorted(study.lateralities),
        "profile": profile.model_dump(mode="json") if profile is not None else None,
    }
    blobs[MANIFEST] = json.dumps(manifest, sort_keys=True).encode("utf-8")
    return blobs


def _image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        return opened.copy()


def decode(manifest: bytes, read: Any) -> KeptInputs:
    """The kept inputs from the manifest and ``read(name) -> bytes`` for each picture."""
    data = json.loads(manifest.decode("utf-8"))
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"kept inputs of format {data.get('version')!r} are not readable here")
    known = {f.name for f in dataclasses.fields(ClinicalContext)}
    study = PreparedStudy(
        images=tuple(_image(read(picture_name(i))) for i in range(int(data["pictures"]))),
        context=ClinicalContext(**{k: v for k, v in (data.get("context") or {}).items() if k in known}),
        source_sop_instance_uids=tuple(data.get("source_sop_instance_uids") or ()),
        notes=tuple(data.get("notes") or ()),
        labels=tuple(data.get("labels") or ()),
        series_chosen=data.get("series_chosen"),
        lateralities=frozenset(data.get("lateralities") or ()),
    )
    profile = data.get("profile")
    return KeptInputs(study, PromptProfileSettings.model_validate(profile) if profile else None)


class FilePreparedStore:
    """Prepared inputs as files: ``<root>/<first two hex digits>/<job id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, job_id: uuid.UUID) -> Path:
        if not isinstance(job_id, uuid.UUID):
            raise TypeError('Argument "job_id" must be a UUID.')
        return self.root / job_id.hex[:2] / str(job_id)

    def save(self, job_id: uuid.UUID, study: PreparedStudy, profile: PromptProfileSettings | None) -> None:
        folder = self.folder(job_id)
        blobs = encode(study, profile)
        (folder / MANIFEST).unlink(missing_ok=True)  # the inputs being replaced are not whole until the end
        for name, data in blobs.items():
            if name != MANIFEST:
                write_durably(folder / name, data)
        write_durably(folder / MANIFEST, blobs[MANIFEST])

    def load(self, job_id: uuid.UUID) -> KeptInputs | None:
        folder = self.folder(job_id)
        try:
            manifest = (folder / MANIFEST).read_bytes()
        except FileNotFoundError:
            return None
        return decode(manifest, lambda name: (folder / name).read_bytes())

    def picture(self, job_id: uuid.UUID, index: int) -> bytes | None:
        folder = self.folder(job_id)
        if not (folder / MANIFEST).is_file():
            return None
        try:
            return (folder / picture_name(index)).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, job_id: uuid.UUID) -> tuple[int, int]:
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


def prepared_store(settings: Settings) -> PreparedStore:
    """The configured store of prepared inputs (the data folder's ``prepared``)."""
    return FilePreparedStore(settings.storage.path / "prepared")


def keep(store: PreparedStore, job_id: uuid.UUID, study: PreparedStudy, profile: PromptProfileSettings | None) -> bool:
    """Save a drafted job's inputs; a failure is logged, never raised: the draft stands without them
    (a question about the study then prepares the pictures again from the stored instances)."""
    try:
        store.save(job_id, study, profile)
    except (OSError, ValueError) as exc:
        logger.warning("the prepared inputs could not be kept (%s)", type(exc).__name__)
        return False
    return True


__all__ = ["FilePreparedStore", "KeptInputs", "PreparedStore", "decode", "encode", "keep", "picture_name",
           "prepared_store"]
