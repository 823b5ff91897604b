"""From prepared studies to checked drafts, the same for every backend.

The backend only turns (images, prompt) into text.  Here the prompt is chosen and filled, the
output is checked (:mod:`radassist.models.checks`) and split into Findings and Impression, and the
record kept with the draft is assembled: exact prompt, profile, model id and revision, generation
settings and figures, consistency warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from radassist.config import PromptProfileSettings
from radassist.errors import RadAssistError
from radassist.imaging.prepare import PreparedStudy
from radassist.models.base import DraftRequest, DraftResult, Generation, GenerationBackend
from radassist.models.checks import check_generation, consistency_warnings
from radassist.models.grounded import grammar_of, ground, with_instruction
from radassist.models.postprocess import split_report
from radassist.models.prompts import PROMPT_VERSION, build_prompt
from radassist.priors.comparison import Comparison

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


def _result(backend: GenerationBackend, item: DraftInput, prompt: str, generation: Generation) -> DraftResult:
    check_generation(generation)
    study = item.study
    text, grounding = ground(backend, study, generation.text)
    findings, impression = split_report(text)
    warnings = consistency_warnings(
        f"{findings}\n{impression}",
        lateralities=study.lateralities,
        body_part=study.context.body_part,
        sex=study.context.sex,
    )
    if generation.stopped == "max_new_tokens":
        warnings.append(
            f"length: the output reached the token limit ({generation.new_tokens}); the impression may be incomplete"
        )
    if warnings:
        logger.info("draft has %d consistency warning(s)", len(warnings))
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
            "consistency_warnings": warnings,
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
