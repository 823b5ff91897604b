"""Prepare one claimed job for the model: its pictures and clinical context, the prompt profile
chosen from its headers, and the RIS order behind it.

A :class:`PreparedJob` holds everything :mod:`radassist.drafting.generate` needs and nothing that
needs the database, the stored files or the claim's session: the seam where preparation can move
ahead of the GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from radassist.config import ModelSettings, PromptProfileSettings
from radassist.drafting.claim import ClaimedJob
from radassist.errors import PermanentFailure, RadAssistError
from radassist.imaging.prepare import PreparedStudy, prepare_study
from radassist.models.profiles import ProfileChooser
from radassist.reasons import plain_reason
from radassist.ris.context import OrderContext, order_context

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedJob:
    """A claimed job ready for the model."""

    claimed: ClaimedJob
    study: PreparedStudy
    profile: PromptProfileSettings | None
    order: OrderContext | None


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


def prepare_job(claimed: ClaimedJob, settings: ModelSettings, order: OrderContext | None) -> PreparedJob | RadAssistError:
    """The job's pictures, profile and order; or the reason there is nothing to draft.

    A library failure or a bug becomes ``draft.error`` (logged with its traceback): a job fails
    visibly, never silently.
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
    return PreparedJob(claimed=claimed, study=study, profile=chooser.profile, order=order)
