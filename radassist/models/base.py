"""What every drafting model gives the worker, whatever its architecture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from radassist.imaging.prepare import PreparedStudy


@dataclass(frozen=True)
class DraftResult:
    """One draft, with what is needed to reproduce and audit it (prompt, model, settings)."""

    findings: str
    impression: str
    raw_text: str
    prompt: str
    prompt_version: str
    model_name: str
    model_revision: str | None
    generation: dict[str, Any] = field(default_factory=dict)
    """Settings and figures: max_new_tokens, do_sample, seconds, new_tokens, images, device, dtype."""


@runtime_checkable
class DraftModel(Protocol):
    """A loaded model that drafts a report for one prepared study."""

    name: str

    def draft(self, study: PreparedStudy) -> DraftResult: ...
