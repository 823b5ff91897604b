"""What a run keeps per study (one JSON file each), and the run's manifest.

A result holds the study's slices, its draft and the reference, every figure of the comparison
(:class:`~radassist.quality.PairMetrics` as a dict), or the reason there is no draft, and the time
each step took.  The run folder holds patient data (report texts, Study Instance UIDs): it is
created owner-only, like everything the service writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radassist.quality import PairMetrics
from radassist.store.private import private_dirs

MANIFEST = "run.json"
STUDIES = "studies"


@dataclass(frozen=True)
class Timings:
    prepare_s: float
    draft_s: float
    """The study's share of its batch's drafting time (the batch time over the studies in it)."""
    measure_s: float
    batch_size: int

    @property
    def total_s(self) -> float:
        return self.prepare_s + self.draft_s + self.measure_s


@dataclass(frozen=True)
class StudyResult:
    handle: str
    study_instance_uid: str
    model_name: str
    model_revision: str | None
    prompt_version: str | None
    profile: str | None
    modality: str | None
    patient_sex: str | None
    age_band: str | None
    reference: str
    timings: Timings
    draft: str | None = None
    metrics: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    """The failure was transient (a busy server, out of memory): a resumed run tries the study again."""
    images: int = 0
    warnings: tuple[str, ...] = field(default=())

    @property
    def measured(self) -> bool:
        return self.metrics is not None

    def pair(self) -> PairMetrics:
        if self.metrics is None:
            raise ValueError("this study has no draft to compare")
        return PairMetrics.from_dict(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyResult:
        values: dict[str, Any] = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["timings"] = Timings(**data["timings"])
        values["warnings"] = tuple(data.get("warnings") or ())
        return cls(**values)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` whole or not at all (a temporary file renamed over ``path``), owner-only."""
    private_dirs(path.parent)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON, written as :func:`write_text` does."""
    write_text(path, json.dumps(data, indent=1, ensure_ascii=False, default=str))


def result_path(run: Path, handle: str) -> Path:
    return run / STUDIES / f"{handle}.json"


def load_result(path: Path) -> StudyResult | None:
    try:
        return StudyResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_results(run: Path) -> list[StudyResult]:
    """Every study result of the run folder, by handle."""
    folder = run / STUDIES
    if not folder.is_dir():
        return []
    found = (load_result(path) for path in sorted(folder.glob("*.json")))
    return [r for r in found if r is not None]


def load_manifest(run: Path) -> dict[str, Any]:
    path = run / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{run} is not an evaluation run folder (no {MANIFEST})")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
