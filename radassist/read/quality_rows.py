"""The Quality page's row types, declared once: the JSON API serves them as they are."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Literal

from radassist.quality import FindingScore

Drafts = Literal["live", "shadow", "all"]
"""Which drafts a view counts: the pipelines' own (``live``), the shadow models', or both."""


@dataclass(frozen=True)
class QualityFilter:
    """A time window (by when the draft was written) and any slice; None is "any"."""

    since: dt.datetime
    until: dt.datetime
    model_name: str | None = None
    prompt_version: str | None = None
    profile: str | None = None
    modality: str | None = None
    calling_ae_title: str | None = None
    patient_sex: str | None = None
    age_band: str | None = None
    drafts: Drafts = "live"


@dataclass(frozen=True)
class Figure:
    """One figure over the selected pairs, with its bootstrap interval (None when it cannot be given)."""

    metric: str
    title: str
    value: float | None
    low: float | None = None
    high: float | None = None
    lower_is_better: bool = False


@dataclass(frozen=True)
class Acceptance:
    """The radiologists' verdicts on the selected drafts; accepted = useful as is or with edits."""

    verdicts: int
    useful_as_is: int
    useful_with_edits: int
    not_useful: int
    rate: float | None
    """(useful as is + useful with edits) / verdicts; None without verdicts."""
    as_is_rate: float | None
    """useful as is / verdicts."""

    @classmethod
    def of(cls, useful_as_is: int, useful_with_edits: int, not_useful: int) -> Acceptance:
        total = useful_as_is + useful_with_edits + not_useful
        rate = (useful_as_is + useful_with_edits) / total if total else None
        return cls(total, useful_as_is, useful_with_edits, not_useful, rate, useful_as_is / total if total else None)


@dataclass(frozen=True)
class CriticalMissRow:
    study_id: uuid.UUID
    drafted_at: dt.datetime
    model_name: str
    shadow: bool
    modality: str | None
    findings: tuple[str, ...]


@dataclass(frozen=True)
class TrendPoint:
    """The figures of one week (Monday 00:00 UTC onwards) of the window."""

    week: dt.date
    pairs: int
    finding_f1_micro: float | None
    rouge_l: float | None
    edit_rate_median: float | None
    critical_miss_rate: float | None
    acceptance_rate: float | None


@dataclass(frozen=True)
class ModelRow:
    """One model's figures over the window and slice (not paired: other studies may be in it)."""

    model_name: str
    shadow: bool
    pairs: int
    finding_f1_micro: float | None
    rouge_l: float | None
    edit_rate_median: float | None
    critical_miss_rate: float | None


@dataclass(frozen=True)
class Difference:
    """A figure of the shadow model minus the live model's over the same studies, with its interval."""

    metric: str
    title: str
    live: float | None
    shadow: float | None
    difference: float | None
    low: float | None
    high: float | None
    lower_is_better: bool = False


@dataclass(frozen=True)
class ShadowComparison:
    """A shadow model against the live drafts of the same studies (paired bootstrap)."""

    shadow_model: str
    live_models: tuple[str, ...]
    studies: int
    differences: tuple[Difference, ...]


@dataclass(frozen=True)
class ModelDrift:
    """A model's drift figure over the last ``[quality] drift_window_days``; ``drifted`` None: too few pairs."""

    model_name: str
    shadow: bool
    metric: str
    figure: float | None
    threshold: float
    pairs: int
    drifted: bool | None


@dataclass(frozen=True)
class QualityView:
    """Everything the Quality page shows for one filter."""

    filter: QualityFilter
    pairs: int
    not_measured: int
    """Pairs whose measurement failed (kept with an error code, left out of every figure)."""
    labelers: tuple[str, ...]
    acceptance: Acceptance
    figures: tuple[Figure, ...]
    per_finding: tuple[FindingScore, ...]
    critical_misses: tuple[CriticalMissRow, ...]
    trend: tuple[TrendPoint, ...]
    models: tuple[ModelRow, ...]
    comparisons: tuple[ShadowComparison, ...]
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The values each slice takes among the measured pairs (for the page's choices)."""
