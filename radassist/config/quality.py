"""``[quality]``: how drafts are measured against the signed final reports."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from radassist.config.common import Section

DriftMetric = Literal["finding_f1_micro", "finding_f1_macro", "rouge_l", "bleu4", "chrf", "edit_rate_median"]


class FindingSettings(Section):
    """One finding of a site vocabulary: its name and the words that mention it."""

    name: str = Field(min_length=1, max_length=64)
    """As shown on the Quality page and stored with each pair (e.g. ``Intracranial Haemorrhage``)."""
    synonyms: tuple[str, ...] = ()
    """Words and phrases that mention it, matched case-insensitively on whole words (plurals in ``s`` are
    added); empty: the built-in synonyms of a finding of that name, else the name itself."""
    negative_phrases: tuple[str, ...] = ()
    """Phrases that state its absence without a negation word (e.g. ``normal heart size``)."""
    abnormal: bool = True
    """False for findings that are no abnormality (support devices): they do not cancel ``normal_finding``."""


class VocabularySettings(Section):
    """The findings labelled for the studies of some prompt profiles."""

    name: str = Field(min_length=1, max_length=64)
    """Recorded with each pair measured over it."""
    profiles: tuple[str, ...] = Field(min_length=1)
    """Prompt profile names (``[[model.profiles]]`` or built-in, e.g. ``ct_head``) whose studies use it."""
    findings: tuple[FindingSettings, ...] = Field(min_length=1)
    """Its findings, each labelled positive, negative, uncertain or absent in draft and final."""
    normal_finding: str = ""
    """Name of a derived finding, positive when no abnormal finding is positive or uncertain (as CheXpert's
    ``No Finding``); empty: none."""


class ShadowSettings(Section):
    """A model that drafts the same studies as a pipeline's own model, in shadow: its drafts are stored and
    measured against the same finals, and never become an SR or an ORU."""

    model_name: str = Field(min_length=1, max_length=256)
    """The shadow model: a hub id or a local folder, loaded by the drafting worker as ``[model] name`` is."""
    pipelines: tuple[str, ...] = ()
    """AE titles of the pipelines whose studies it shadows (``[dicom] ae_title`` for the default one);
    empty: every pipeline."""


class QualitySettings(Section):
    """How drafts are measured against the signed final reports (text change, findings, laterality)."""

    chexbert_path: Path | None = None
    """Folder holding CheXbert's ``chexbert.pth`` with ``config.json`` and ``vocab.txt`` of bert-base-uncased;
    chest-radiograph findings are then labelled by CheXbert (``pip install radassist[chexbert]``). Never
    downloaded. Empty, or the files absent: the rule labeler."""
    chexpert_profiles: tuple[str, ...] = ("cxr",)
    """Prompt profiles whose studies are labelled with the 14 CheXpert observations."""
    vocabularies: tuple[VocabularySettings, ...] = ()
    """Site finding vocabularies (``[[quality.vocabularies]]``), tried before the CheXpert one."""
    critical_findings: tuple[str, ...] = (
        "Pneumothorax",
        "Pneumoperitoneum",
        "Intracranial Haemorrhage",
        "Aortic Dissection",
        "Pulmonary Embolism",
    )
    """Findings whose absence from a draft is flagged when the final report states them (every profile).
    Names of vocabulary findings or of built-in ones (listed in docs/quality.md)."""
    drift_metric: DriftMetric = "finding_f1_micro"
    """The weekly figure watched for drift, per model: ``finding_f1_micro``, ``finding_f1_macro``,
    ``rouge_l``, ``bleu4``, ``chrf`` or ``edit_rate_median`` (for which higher is worse)."""
    drift_threshold: float = Field(0.5, ge=0)
    """Drift is flagged when the figure falls below this (rises above it for ``edit_rate_median``)."""
    drift_window_days: int = Field(7, ge=1, le=365)
    """Length of the window over which the drift figure is computed."""
    drift_min_pairs: int = Field(20, ge=1)
    """Fewer draft/final pairs in the window than this: no drift verdict (too few to tell)."""
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)
    """Resamples of each bootstrap confidence interval."""
    bootstrap_confidence: float = Field(0.95, gt=0, lt=1)
    """Coverage of the confidence intervals."""
    bootstrap_seed: int = Field(0, ge=0)
    """Seed of the resampling, so the same pairs always give the same intervals."""
    age_bands: tuple[int, ...] = (18, 40, 60, 80)
    """Ages (years) where a new age band starts, for the fairness slices: ``18, 40`` gives 0-17, 18-39, 40+."""
    measure_interval_seconds: float = Field(30.0, gt=0)
    """How often the scheduler looks for drafts whose final report arrived and that wait to be measured."""
    measure_batch: int = Field(200, ge=1, le=10_000)
    """Most drafts handed to the ``cpu`` queue for measuring at once (only when that queue is empty)."""
    shadows: tuple[ShadowSettings, ...] = ()
    """Models drafting in shadow (``[[quality.shadows]]``): they draft the pipeline's studies and deliver nothing."""

    @field_validator("chexbert_path", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        # An empty environment override (RADASSIST_QUALITY_CHEXBERT_PATH=) means "no CheXbert", not ".".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("age_bands")
    @classmethod
    def _increasing_bands(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(age <= 0 for age in value) or list(value) != sorted(set(value)):
            raise ValueError("age_bands must be increasing positive ages")
        return value

    @model_validator(mode="after")
    def _one_vocabulary_per_profile(self) -> QualitySettings:
        seen: set[str] = set()
        for vocabulary in self.vocabularies:
            names = [f.name for f in vocabulary.findings]
            if len(names) != len(set(names)) or vocabulary.normal_finding in names:
                raise ValueError(f"vocabulary {vocabulary.name}: finding names must be unique")
            twice = seen & set(vocabulary.profiles)
            if twice:
                raise ValueError(f"profiles {sorted(twice)} are in more than one quality vocabulary")
            seen.update(vocabulary.profiles)
        return self
