"""Measure one draft against its study's newest final report, and store the row.

Idempotent: a draft already measured against that report is left alone (one row per draft and
report; the unique constraint settles two workers racing).  The new row becomes the draft's
``current`` measurement and any row against an older report stops being current, so a correction
re-measures and takes over.  A comparison that fails is stored as such (``error_code``, no figures)
and logged by its kind only: report text never reaches a log.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from radassist.config.quality import QualitySettings
from radassist.db.tables import Draft, DraftMeasurement, Job, Report, Study
from radassist.events import EventTag, record_event
from radassist.measuring.find import newest_report
from radassist.quality.metrics import PairMetrics
from radassist.quality.normalise import draft_report
from radassist.quality.slices import age_band

logger = logging.getLogger(__name__)

Compare = Callable[[str, str, str], PairMetrics]
"""(draft text, final text, profile) -> figures: :func:`radassist.quality.compare_pair` with the settings bound."""

MEASURE_FAILED = "quality.measure"
"""The error code of a pair that could not be measured."""
DEFAULT_PROFILE = "general"
"""The profile of a draft whose record names none (the built-in catch-all profile)."""


@dataclass(frozen=True)
class Measured:
    measurement_id: uuid.UUID
    current: bool
    error_code: str | None


def _headline(metrics: PairMetrics) -> dict[str, Any]:
    return {
        "labeler": metrics.labeler,
        "vocabulary": metrics.vocabulary,
        "edit_rate": metrics.text.edit_rate,
        "rouge_l": metrics.text.rouge_l,
        "bleu4": metrics.text.bleu4,
        "chrf": metrics.text.chrf,
        "finding_f1": metrics.finding_f1,
        "finding_agreement": metrics.finding_agreement,
        "critical_miss": bool(metrics.critical_misses),
        "laterality_swap": bool(metrics.laterality.swaps),
        "metrics": metrics.to_dict(),
    }


def profile_of(draft: Draft) -> str:
    """The prompt profile the draft was written with, as its generation record names it."""
    profile = (draft.generation or {}).get("profile")
    return str(profile) if profile else DEFAULT_PROFILE


def _slices(draft: Draft, job: Job, study: Study, settings: QualitySettings) -> dict[str, Any]:
    return {
        "shadow": job.shadow,
        "drafted_at": draft.created_at,
        "model_name": draft.model_name,
        "model_revision": draft.model_revision,
        "prompt_version": draft.prompt_version,
        "profile": profile_of(draft),
        "modality": study.modality,
        "calling_ae_title": study.calling_ae_title,
        "patient_sex": study.patient_sex,
        "age_band": age_band(study.patient_age, settings.age_bands),
    }


def _compare(compare: Compare, draft: Draft, report: Report, profile: str) -> PairMetrics | None:
    try:
        return compare(draft_report(draft.findings, draft.impression), report.text, profile)
    except Exception as exc:  # noqa: BLE001 -- a library failure is stored and logged by its kind, never its text
        logger.warning("the draft could not be measured (%s)", type(exc).__name__)
        return None


def measure_draft(
    session: Session, draft_id: uuid.UUID, settings: QualitySettings, compare: Compare, now: dt.datetime
) -> Measured | None:
    """Measure the draft against its study's newest final report; None when there is nothing (new) to do.

    The caller commits.
    """
    row = session.execute(
        select(Draft, Job, Study).join(Job, Job.id == Draft.job_id).join(Study, Study.id == Job.study_id)
        .where(Draft.id == draft_id)
    ).one_or_none()
    if row is None:
        return None
    draft, job, study = row
    report = newest_report(session, study.accession_number_hash)
    if report is None:
        return None
    done = select(DraftMeasurement.id).where(DraftMeasurement.draft_id == draft_id,
                                             DraftMeasurement.report_id == report.id)
    if session.scalar(done) is not None:
        return None
    profile = profile_of(draft)
    metrics = _compare(compare, draft, report, profile)
    measurement = DraftMeasurement(
        draft_id=draft.id, report_id=report.id, job_id=job.id, study_id=study.id, current=True,
        report_received_at=report.received_at, measured_at=now, **_slices(draft, job, study, settings),
        **(_headline(metrics) if metrics is not None else {"error_code": MEASURE_FAILED}),
    )
    session.execute(
        update(DraftMeasurement)
        .where(DraftMeasurement.draft_id == draft.id, DraftMeasurement.report_id != report.id)
        .values(current=False)
        .execution_options(synchronize_session=False)
    )
    session.add(measurement)
    session.flush()
    record_event(session, EventTag.QUALITY_MEASURED, study_id=study.id, job_id=job.id,
                 report_id=str(report.id), report_status=report.status, shadow=job.shadow,
                 labeler=measurement.labeler, code=measurement.error_code)
    return Measured(measurement.id, True, measurement.error_code)
