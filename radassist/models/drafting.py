"""From prepared studies to checked drafts, the same for every backend.

The backend only turns (images, prompt) into text.  Here the prompt is chosen and filled, the
output is checked (:mod:`radassist.models.checks`) and split into Findings and Impression, and the
record kept with the draft is assembled: exact prompt, profile, model id and revision, generation
settings and figures, and the safety warnings (``safety_warnings``: check and message; what the
gate does with them is decided where the draft is recorded, :mod:`radassist.drafting.record`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from radassist.config import PromptProfileSettings
from radassist.errors import PermanentFailure, RadAssistError
from radassist.imaging.prepare import PreparedStudy
from radassist.models.base import DraftRequest, DraftResult, Generation, GenerationBackend
from radassist.models.checks import check_generation, output_warnings
from radassist.models.grounded import grammar_of, ground, with_instruction
from radassist.models.postprocess import split_report
from radassist.models.prompts import PROMPT_VERSION, build_prompt
from radassist.priors.comparison import Comparison
from radassist.safety import Check, SafetyWarning, StudyFacts, consistency_warnings

if TYPE_CHECKING:
    from PIL.Image import Image

    from radassist.ris.context import OrderContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DraftInput:
    """One study to draft: its pictures and context, the profile and order used for the prompt, and
    the comparison with the patient's priors (with the newest prior's pictures, when the profile
    shows them)."""

    study: PreparedStudy
    profile: PromptProfileSettings | None = None
    order: OrderContext | None = None
    comparison: Comparison | None = None
    prior: PreparedStudy | None = None
    """The newest prior's pictures, labelled as prior; shown where the profile's ``image_order`` puts them."""

    def _prior_pictures(self) -> tuple[tuple[Image, ...], tuple[str, ...]]:
        if self.prior is None or self.profile is None or "prior" not in self.profile.image_order:
            return (), ()
        return self.prior.images, self.prior.labels

    def prompt(self) -> str:
        return build_prompt(self.study.context, len(self.study.images), profile=self.profile, order=self.order,
                            comparison=self.comparison, prior_images=len(self._prior_pictures()[0]))

    def request(self, prompt: str) -> DraftRequest:
        """The pictures (and their labels) in the profile's order, then ``prompt``."""
        prior_images, prior_labels = self._prior_pictures()
        current_labels = self.study.labels or ("",) * len(self.study.images)
        parts = {"current": (self.study.images, current_labels),
                 "prior": (prior_images, prior_labels or ("",) * len(prior_images))}
        order = self.profile.image_order if self.profile is not None else ("current",)
        images = tuple(image for name in order for image in parts[name][0])
        labels = tuple(label for name in order for label in parts[name][1])
        return DraftRequest(images, prompt, labels if any(labels) else ())


def study_facts(item: DraftInput) -> StudyFacts:
    """What the consistency checks compare the draft with: headers and the chosen profile."""
    context = item.study.context
    return StudyFacts(
        lateralities=tuple(sorted(item.study.lateralities)),
        body_part=context.body_part,
        modality=context.modality,
        sex=context.sex,
        profile=item.profile.name if item.profile else None,
        descriptions=(context.study_description, context.series_description),
    )


def _sections(text: str, warnings: Sequence[SafetyWarning]) -> tuple[str, str]:
    """Findings and Impression; a repetitive output that cannot be split is kept whole as Findings,
    so that the radiologist can see what the gate held."""
    try:
        return split_report(text)
    except PermanentFailure:
        if not any(w.check is Check.REPETITIVE for w in warnings):
            raise
        return " ".join(text.split())[:4000], ""


def _result(backend: GenerationBackend, item: DraftInput, prompt: str, generation: Generation) -> DraftResult:
    check_generation(generation)
    study = item.study
    text, grounding = ground(backend, study, generation.text)
    warnings = output_warnings(generation)
    findings, impression = _sections(text, warnings)
    warnings += consistency_warnings(f"{findings}\n{impression}", study_facts(item))
    if warnings:
        logger.info("draft has %d safety warning(s): %s", len(warnings), ", ".join(w.check for w in warnings))
    record: dict[str, Any] = dict(backend.describe())
    record.update(
        {
            "seconds": round(generation.seconds, 3),
            "new_tokens": generation.new_tokens,
            "stopped": generation.stopped,
            "batch_size": generation.batch_size,
            "oom_splits": generation.oom_splits,
            "images": len(study.images),
            "image_labels": list(study.labels),
            "profile": item.profile.name if item.profile else None,
            "safety_warnings": [w.as_dict() for w in warnings],
            "consistency_warnings": [f"{w.check}: {w.message}" for w in warnings],
            "series_chosen": study.series_chosen,
        }
    )
    if grounding is not None:
        record["grounding"] = grounding
    return DraftResult(
        findings=findings,
        impression=impression,
        raw_text=generation.text,
        prompt=prompt,
        prompt_version=PROMPT_VERSION,
        model_name=backend.name,
        model_revision=backend.revision,
        generation=record,
    )


def draft_many(backend: GenerationBackend, items: Sequence[DraftInput]) -> list[DraftResult | RadAssistError]:
    """Draft every item in one backend call; each entry is its draft or the reason it has none."""
    prompts = [with_instruction(item.prompt(), grammar_of(backend)) for item in items]
    requests = [item.request(prompt) for item, prompt in zip(items, prompts, strict=True)]
    try:
        generations = backend.generate(requests)
    except RadAssistError as exc:
        return [exc for _ in items]
    if len(generations) != len(items):
        raise RuntimeError(f"backend returned {len(generations)} generations for {len(items)} requests")
    results: list[DraftResult | RadAssistError] = []
    for item, prompt, generation in zip(items, prompts, generations, strict=True):
        try:
            results.append(_result(backend, item, prompt, generation))
        except RadAssistError as exc:
            results.append(exc)
    return results


def draft_one(backend: GenerationBackend, item: DraftInput) -> DraftResult:
    """One study; raises the reason when there is no draft."""
    result = draft_many(backend, [item])[0]
    if isinstance(result, RadAssistError):
        raise result
    return result
