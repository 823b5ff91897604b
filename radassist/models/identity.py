"""How the SR and the ORU name the model: an id and a revision, never a local filesystem path.

A hub model is its hub id and the commit it was loaded at.  A local folder is named by ``[model]
model_id``, else by the ``_name_or_path`` its ``config.json`` declares (when that is an id, not a
path), else by the folder's own name; its revision is a hash of its weight files' contents, so the
same weights are recognisably the same model wherever they are installed, and changed weights are
never mistaken for the old ones.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

from radassist.config import ModelSettings

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_CHUNK = 1 << 22


def is_local_folder(name: str) -> bool:
    """True when ``name`` names a folder on this machine rather than a hub id."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().is_dir()


def _declared_id(folder: Path) -> str | None:
    """The id the folder's ``config.json`` declares, when it is an id and not a path."""
    try:
        declared = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(declared, str) and _HUB_ID.fullmatch(declared) and not Path(declared).is_absolute():
        return declared
    return None


@lru_cache(maxsize=8)
def _hash_files(files: tuple[tuple[str, int, int], ...], root: str) -> str:
    digest = hashlib.sha256()
    for relative, _size, _mtime in files:
        digest.update(relative.encode("utf-8") + b"\0")
        with open(Path(root) / relative, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def weights_revision(folder: Path) -> str | None:
    """``sha256:`` and the first 16 hex of a hash over the folder's weight files (names and contents);
    None when it has none.  Remembered per file list, size and modification time."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        return None
    listing = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return "sha256:" + _hash_files(listing, str(folder))[:16]


def model_identity(settings: ModelSettings, loaded_revision: str | None = None) -> tuple[str, str | None]:
    """(model id, revision) for a model loaded with ``settings``; ``loaded_revision`` is what the
    library reported (a hub commit), used for hub models."""
    if not is_local_folder(settings.name):
        return settings.name, settings.revision or loaded_revision
    folder = Path(settings.name).expanduser().resolve()
    model_id = settings.model_id.strip() or _declared_id(folder) or folder.name
    return model_id, weights_revision(folder)
