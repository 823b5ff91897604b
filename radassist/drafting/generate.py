"""Draft a batch of prepared jobs in one model call, with the model of their pipeline.

A batch holds jobs of one model (:mod:`radassist.drafting.claim` batches by ``jobs.model_name``,
which the study's pipeline chose when it completed); the process loads each model once
(:mod:`radassist.models.loader`), on the first job that needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from radassist.config import ModelSettings
from radassist.db.tables import Draft
from radassist.drafting.prepare import PreparedJob
from radassist.errors import PermanentFailure, RadAssistError
from radassist.models.base import DraftResult
from radassist.models.drafting import DraftInput, draft_many
from radassist.models.loader import get_draft_model
from radassist.reasons import plain_reason

logger = logging.getLogger(__name__)


def model_settings_for(settings: ModelSettings, model_name: str) -> ModelSettings:
    """``[model]`` with the job's model: the default pipeline's is ``[model] name`` itself."""
    if not model_name or model_name == settings.name:
        return settings
    return settings.model_copy(update={"name": model_name})


def draft_prepared(batch: Sequence[PreparedJob], settings: ModelSettings) -> list[DraftResult | RadAssistError]:
    """One result per job, in order: its draft, or the reason it has none.

    A library failure or a bug becomes ``draft.error`` for the whole batch (logged with its
    traceback); a soft time limit is left to the caller, which fails the batch with it.
    """
    if not batch:
        return []
    try:
        model = get_draft_model(model_settings_for(settings, batch[0].claimed.model_name))
        return draft_many(model, [_draft_input(p) for p in batch])
    except RadAssistError as exc:
        return [exc for _ in batch]
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # a bug or a library failure: fail visibly, never silently
        logger.exception("drafting failed unexpectedly")
        reason = f"drafting failed: {plain_reason(exc, 'the drafting code')}"
        return [PermanentFailure(reason, code="draft.error") for _ in batch]


def _draft_input(prepared: PreparedJob) -> DraftInput:
    comparison = prepared.comparison.comparison if prepared.comparison is not None else None
    return DraftInput(prepared.study, prepared.profile, prepared.order, comparison=comparison, prior=prepared.prior)


def _comparison_record(prepared: PreparedJob) -> dict[str, Any]:
    """What the draft compared with (kept with it for the outputs and the study page)."""
    if prepared.comparison is None:
        return {}
    comparison = prepared.comparison.comparison
    shown = prepared.prior is not None and prepared.profile is not None and "prior" in prepared.profile.image_order
    return {
        "comparison": {"reason_code": comparison.reason_code,
                       "study_instance_uids": [s.study_instance_uid for s in comparison.studies]},
        "prior_images": len(prepared.prior.images) if shown and prepared.prior else 0,
        "prior_image_labels": list(prepared.prior.labels) if shown and prepared.prior else [],
        "prior_sop_instance_uids": list(prepared.prior.source_sop_instance_uids) if shown and prepared.prior else [],
        "image_order": list(prepared.profile.image_order) if prepared.profile else ["current"],
    }


def draft_row(prepared: PreparedJob, result: DraftResult) -> Draft:
    """The draft as stored: the model's text and record, plus what it was shown and told."""
    study = prepared.study
    generation: dict[str, Any] = dict(result.generation)
    generation["indication"] = study.context.indication
    generation["notes"] = list(study.notes)
    generation["source_sop_instance_uids"] = list(study.source_sop_instance_uids)
    generation["order_context_used"] = prepared.order is not None
    generation.update(_comparison_record(prepared))
    return Draft(
        job_id=prepared.claimed.job_id,
        findings=result.findings,
        impression=result.impression,
        raw_text=result.raw_text,
        model_name=result.model_name,
        model_revision=result.model_revision,
        prompt=result.prompt,
        prompt_version=result.prompt_version,
        generation=generation,
        profile=prepared.profile.name if prepared.profile else None,
    )
