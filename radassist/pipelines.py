"""Pipelines: what happens to a study is chosen by the AE title it was sent to.

One port serves several AE titles; ``[dicom] ae_title`` is the default pipeline and each
``[[pipelines]]`` entry adds one.  Every stage that needs a per-pipeline value (the sweep's quiet
time and model, the delivery's destinations and HL7 switch) resolves it here from the study's
``called_ae_title``, so no stage re-implements the fallback rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from radassist.config import PipelineSettings, RequiredSeries, Settings


@dataclass(frozen=True)
class Pipeline:
    """The effective settings of one pipeline, fallbacks applied."""

    ae_title: str
    model_name: str
    destinations: tuple[str, ...]
    """Names of the ``[[destinations]]`` that receive the SR."""
    hl7: bool
    """True when an ORU^R01 goes to the RIS (``[hl7]`` configured and the pipeline wants it)."""
    study_quiet_seconds: float
    series_quiet_seconds: float
    force_complete_after_seconds: float
    required_series: tuple[RequiredSeries, ...]
    draft_non_image: bool
    priority: int
    is_default: bool
    shadow_models: tuple[str, ...] = ()
    """Models that also draft this pipeline's studies, in shadow (``[[quality.shadows]]``): nothing delivered."""
    stat: bool = False
    """Every study of this pipeline is STAT (``[[pipelines]] stat``)."""


def _shadow_models(settings: Settings, ae_title: str, main_model: str) -> tuple[str, ...]:
    """The shadow models of the pipeline of ``ae_title``, each once, never its own model."""
    names = (s.model_name for s in settings.quality.shadows if not s.pipelines or ae_title in s.pipelines)
    return tuple(dict.fromkeys(n for n in names if n != main_model))


def _resolve(settings: Settings, entry: PipelineSettings | None) -> Pipeline:
    dicom = settings.dicom
    all_destinations = tuple(d.name for d in settings.destinations)
    if entry is None:
        return Pipeline(
            ae_title=dicom.ae_title,
            model_name=settings.model.name,
            destinations=all_destinations,
            hl7=settings.hl7.enabled,
            study_quiet_seconds=dicom.study_quiet_seconds,
            series_quiet_seconds=dicom.series_quiet_seconds,
            force_complete_after_seconds=dicom.force_complete_after_seconds,
            required_series=dicom.required_series,
            draft_non_image=dicom.draft_non_image,
            priority=0,
            is_default=True,
            shadow_models=_shadow_models(settings, dicom.ae_title, settings.model.name),
        )

    def pick(value: object, fallback: object) -> object:
        return fallback if value is None else value

    model_name = entry.model_name or settings.model.name
    return Pipeline(
        ae_title=entry.ae_title,
        model_name=model_name,
        destinations=all_destinations if entry.destinations is None else tuple(entry.destinations),
        hl7=settings.hl7.enabled and entry.hl7,
        study_quiet_seconds=float(pick(entry.study_quiet_seconds, dicom.study_quiet_seconds)),  # type: ignore[arg-type]
        series_quiet_seconds=float(pick(entry.series_quiet_seconds, dicom.series_quiet_seconds)),  # type: ignore[arg-type]
        force_complete_after_seconds=float(
            pick(entry.force_complete_after_seconds, dicom.force_complete_after_seconds)  # type: ignore[arg-type]
        ),
        required_series=dicom.required_series if entry.required_series is None else tuple(entry.required_series),
        draft_non_image=bool(pick(entry.draft_non_image, dicom.draft_non_image)),
        priority=entry.priority,
        is_default=False,
        shadow_models=_shadow_models(settings, entry.ae_title, model_name),
        stat=entry.stat,
    )


def pipeline_for(settings: Settings, called_ae: str | None) -> Pipeline:
    """The pipeline of studies sent to ``called_ae``; the default one for ours or an unknown title."""
    title = (called_ae or "").strip()
    for entry in settings.pipelines:
        if entry.ae_title == title:
            return _resolve(settings, entry)
    return _resolve(settings, None)


def all_pipelines(settings: Settings) -> list[Pipeline]:
    """Every pipeline, highest priority first (the default pipeline has priority 0)."""
    pipelines = [_resolve(settings, None), *(_resolve(settings, e) for e in settings.pipelines)]
    return sorted(pipelines, key=lambda p: -p.priority)


def ae_titles(settings: Settings) -> tuple[str, ...]:
    """Every AE title the listener answers to."""
    return (settings.dicom.ae_title, *(p.ae_title for p in settings.pipelines))


def series_matches(rule: RequiredSeries, modality: str | None, description: str | None) -> bool:
    """True when a series (its Modality and Series Description) satisfies ``rule``."""
    if rule.modality and (modality or "").strip().upper() != rule.modality.strip().upper():
        return False
    if rule.description_pattern and not re.search(rule.description_pattern, description or "", re.IGNORECASE):
        return False
    return True


__all__ = ["Pipeline", "ae_titles", "all_pipelines", "pipeline_for", "series_matches"]
