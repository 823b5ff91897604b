"""Prepare one claimed job for the model: its pictures and clinical context, the prompt profile
chosen from its headers, the RIS order behind it, and the comparison with the patient's priors
(with the newest prior's pictures, prepared like the current ones and labelled as prior, when the
profile shows them).

A :class:`PreparedJob` holds everything :mod:`radassist.drafting.generate` needs and nothing that
needs the database, the stored files or the claim's session.  Preparation runs on the cpu queue,
ahead of the GPU: what it made is kept in the prepared store as :class:`KeptInputs`
(:func:`kept_inputs`), and the drafting worker rebuilds the job from there (:func:`from_kept`).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from radassist.config import ModelSettings, PromptProfileSettings
from radassist.drafting.claim import ClaimedJob
from radassist.errors import PermanentFailure, RadAssistError
from radassist.imaging.prepare import PreparedStudy, RenderOptions, prepare_study
from radassist.models.profiles import ProfileChooser
from radassist.prefetch.read import JobComparison, job_comparison
from radassist.reasons import plain_reason
from radassist.ris.context import OrderContext, order_context
from radassist.store.prepared_codec import KeptInputs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedJob:
    """A claimed job ready for the model."""

    claimed: ClaimedJob
    study: PreparedStudy
    profile: PromptProfileSettings | None
    order: OrderContext | None
    comparison: JobComparison | None = None
    """None when the job's priors were never searched."""
    prior: PreparedStudy | None = None
    """The newest prior's pictures, when the profile shows them and they could be prepared."""


def read_order(session: Session, accession_hash: str | None) -> OrderContext | None:
    """The RIS order (and signed report) for the study, when the HL7 listener received one.

    The order is optional context: a failure to read it is logged and the draft goes on without it.
    """
    if not accession_hash:
        return None
    try:
        return order_context(session, accession_hash)
    except Exception as exc:  # noqa: BLE001 -- never fail a draft for its optional context
        logger.warning("order context unavailable (%s)", type(exc).__name__)
        return None


def read_comparison(session: Session, job_id: uuid.UUID, instances_dir: Path) -> JobComparison | None:
    """The job's comparison with its priors (:mod:`radassist.prefetch`), None when never searched.

    Like the order, it is context: a failure to read it is logged and the draft goes on without it.
    """
    try:
        return job_comparison(session, job_id, instances_dir)
    except Exception as exc:  # noqa: BLE001 -- never fail a draft for its optional context
        logger.warning("comparison with the priors unavailable (%s)", type(exc).__name__)
        return None


def _prior_pictures(comparison: JobComparison | None, profile: PromptProfileSettings | None,
                    settings: ModelSettings) -> PreparedStudy | None:
    """The newest prior's pictures, prepared as the current study's are and labelled as prior; None
    when the profile shows none or they cannot be prepared (the draft goes on with the prior's words)."""
    if profile is None or "prior" not in profile.image_order or comparison is None:
        return None
    newest = comparison.comparison.newest
    if newest is None or not comparison.newest_files:
        return None
    options = RenderOptions(windows=profile.windows, window_mode=profile.window_mode,
                            max_slices=profile.max_prior_images)
    try:
        prior = prepare_study(comparison.newest_files, image_size=settings.image_size,
                              max_images=profile.max_prior_images, resolve=lambda _context: options)
    except Exception as exc:  # noqa: BLE001 -- the prior's pictures are optional
        logger.warning("the prior's pictures could not be prepared (%s); its report is still used", type(exc).__name__)
        return None
    when = newest.study_date.isoformat() if newest.study_date else "unknown date"
    labels = tuple(f"prior {label} ({when})".replace("  ", " ") for label in (prior.labels or ("",) * len(prior.images)))
    return dataclasses.replace(prior, labels=labels)


def prepare_job(claimed: ClaimedJob, settings: ModelSettings, order: OrderContext | None,
                comparison: JobComparison | None = None) -> PreparedJob | RadAssistError:
    """The job's pictures, profile, order and comparison; or the reason there is nothing to draft.

    A library failure or a bug becomes ``draft.error`` (logged with its traceback): a job fails
    visibly, never silently.  The prior's pictures never fail a job.
    """
    chooser = ProfileChooser(settings)
    try:
        study = prepare_study(claimed.paths, image_size=settings.image_size, max_images=settings.max_images,
                              resolve=chooser, square=settings.pad_to_square)
    except RadAssistError as exc:
        return exc
    except Exception as exc:  # a bug or a library failure
        logger.exception("preparing the study failed unexpectedly")
        return PermanentFailure(f"preparing the study's images failed: {plain_reason(exc, 'preparing the images')}",
                                code="draft.error")
    return PreparedJob(claimed=claimed, study=study, profile=chooser.profile, order=order, comparison=comparison,
                       prior=_prior_pictures(comparison, chooser.profile, settings))


def kept_inputs(job: PreparedJob) -> KeptInputs:
    """What the prepared store keeps of a prepared job: all the model is shown, no file paths."""
    comparison = job.comparison.comparison if job.comparison is not None else None
    return KeptInputs(job.study, job.profile, order=job.order, comparison=comparison, prior=job.prior)


def from_kept(claimed: ClaimedJob, kept: KeptInputs) -> PreparedJob:
    """The claimed job ready for the model, from its kept inputs (the drafting worker's side)."""
    comparison = JobComparison(kept.comparison) if kept.comparison is not None else None
    return PreparedJob(claimed=claimed, study=kept.study, profile=kept.profile, order=kept.order,
                       comparison=comparison, prior=kept.prior)
