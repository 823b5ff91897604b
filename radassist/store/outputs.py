"""Where produced SRs and HL7 messages are kept: the exact bytes every delivery attempt re-sends."""

from __future__ import annotations

import uuid
from pathlib import Path

from radassist.store.durable import write_durably


class OutputStore:
    """Files under ``[storage] path``/outputs, named by job id (never by DICOM values)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, job_id: uuid.UUID, name: str, data: bytes) -> str:
        relpath = f"{job_id.hex[:2]}/{job_id}/{name}"
        write_durably(self.path(relpath), data)
        return relpath

    def path(self, relpath: str) -> Path:
        resolved = (self.root / relpath).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ValueError("output path escapes the output folder")
        return resolved

    def read(self, relpath: str) -> bytes:
        return self.path(relpath).read_bytes()
