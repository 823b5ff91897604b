"""What every drafting backend gives the worker, whatever its architecture or where it runs.

The interface a backend implements is deliberately small -- ``generate(requests)`` turning
(images, prompt) pairs into text plus how the text ended -- so that a site can wrap a model that
needs its own code (CheXagent, MAIRA-2 with ``trust_remote_code``) in a few dozen lines, in its own
environment and Celery queue.  Prompting, output checks, parsing and record keeping stay in
:mod:`radassist.models.drafting`, shared by every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from radassist.imaging.prepare import PreparedStudy

StopReason = Literal["eos", "max_new_tokens", "time_limit"]


@dataclass(frozen=True)
class DraftRequest:
    """One study as a model sees it: pictures in reading order and the instruction that follows them."""

    images: tuple[Image.Image, ...]
    prompt: str
    labels: tuple[str, ...] = ()
    """Optional words said just before each image (``R CC``, ``slice 2 of 8``); empty: none."""


@dataclass(frozen=True)
class Generation:
    """What came back for one request, and why it stopped (the output checks need to know)."""

    text: str
    new_tokens: int
    stopped: StopReason
    seconds: float
    batch_size: int = 1
    oom_splits: int = 0
    """How often the batch was halved after running out of GPU memory before this one succeeded."""


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
    """Settings and figures: max_new_tokens, do_sample, seconds, new_tokens, images, device, dtype..."""


@runtime_checkable
class GenerationBackend(Protocol):
    """The whole contract of a backend (see the module docstring)."""

    name: str
    revision: str | None

    def describe(self) -> dict[str, Any]:
        """Settings recorded with each draft: backend, device, dtype, max_new_tokens, do_sample..."""
        ...

    def generate(self, requests: Sequence[DraftRequest]) -> list[Generation]:
        """One Generation per request, in order.  Raise RadAssistError subclasses for failures."""
        ...


@runtime_checkable
class DraftModel(Protocol):
    """A loaded model that drafts a report for one prepared study (convenience over a backend)."""

    name: str

    def draft(self, study: PreparedStudy) -> DraftResult: ...
