"""Study completion: a study quiet for long enough is claimed, once, and gets a drafting job.

"Quiet for N seconds" is a property of time, not of any message.  The listener that recorded a
study's last instance claims it when that quiet time ends (:func:`claim_study`, from
:mod:`dicom_node.completion_timer`); a periodic sweep claims every study that is due
(:func:`claim_all`), and is the backstop for what no listener's timer saw.  Any number of them may
try one study at once: each candidate is claimed with a compare-and-set ``UPDATE ... WHERE
state = 'receiving' AND last_received_at <= cutoff``, so exactly one of them wins, and an
instance arriving at the same moment (which moves ``last_received_at``) makes the claim miss.

Per pipeline (the study's called AE title, :mod:`radassist.pipelines`) a study is complete when

* it has been quiet for ``study_quiet_seconds`` and holds every ``required_series``; or
* it holds every required series and has been quiet for the (shorter) ``series_quiet_seconds``; or
* its first instance came ``force_complete_after_seconds`` ago (whatever is missing).

A complete study with no image instance (only SR, PR, KO, PDF...) gets no job unless the
pipeline drafts non-image objects.  A job for a study that had one before records it in
``supersedes_job_id``: its SR replaces the earlier one, and an earlier job not yet delivering is
cancelled (:mod:`radassist.completion.supersede`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from radassist.completion.supersede import supersede_earlier_jobs, supersede_earlier_shadows
from radassist.config import RequiredSeries, Settings
from radassist.db.tables import Instance, Job, Series, Study
from radassist.events import EventTag, record_event
from radassist.identifiers import study_handle
from radassist.intake.sop_classes import is_image_sop_class
from radassist.logging import log_context
from radassist.pipelines import Pipeline, all_pipelines, pipeline_for, series_matches
from radassist.prefetch.start import first_job_state
from radassist.ris.priority import job_priority
from radassist.states import JobState, StudyState

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 200


def claim_complete_studies(
    session: Session,
    *,
    now: dt.datetime,
    quiet_seconds: float,
    model_name: str,
    limit: int = DEFAULT_BATCH,
    called_ae_titles: Collection[str] | None = None,
    exclude_called_ae_titles: Collection[str] = (),
    series_quiet_seconds: float = 0.0,
    force_complete_after_seconds: float = 0.0,
    required_series: Sequence[RequiredSeries] = (),
    draft_non_image: bool = False,
    job_state: JobState = JobState.QUEUED,
    shadow_models: Sequence[str] = (),
    study_instance_uid: str | None = None,
    by: str = "sweep",
    stat: bool = False,
) -> list[uuid.UUID]:
    """Move complete ``receiving`` studies to ``complete`` and queue one job each; return the job ids.

    Each job is made in ``job_state``: ``priors`` when its priors are fetched first
    (:func:`radassist.prefetch.start.first_job_state`), else ``queued``.  Each model of
    ``shadow_models`` gets a shadow job of the study too (its id follows the study's job).

    ``called_ae_titles`` limits the sweep to studies sent to those titles;
    ``exclude_called_ae_titles`` leaves those out (the default pipeline takes every study that no
    other pipeline claims, including those without a called title).  The caller commits (and only
    then hands the job ids to the broker).  On PostgreSQL the candidates are locked with ``FOR
    UPDATE SKIP LOCKED``, so concurrent sweepers split the work instead of queueing behind each
    other, and a study whose row an intake transaction holds is left for the next sweep.  Only
    ``receiving`` studies are candidates: one held for an identity conflict is never drafted.
    ``study_instance_uid`` limits the claim to that one study; ``by`` names the claimer on the
    ``study:complete`` event (``sweep`` or ``timer``).  Each job is STAT when ``stat`` (the
    pipeline's) or the study's RIS order says so (:mod:`radassist.ris.priority`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if quiet_seconds < 0:
        raise ValueError("quiet_seconds must not be negative")
    if series_quiet_seconds < 0 or force_complete_after_seconds < 0:
        raise ValueError("series_quiet_seconds and force_complete_after_seconds must not be negative")
    if not model_name:
        raise ValueError("model_name must not be empty")
    early = series_quiet_seconds if (required_series and series_quiet_seconds > 0) else quiet_seconds
    quiet_cutoff = now - dt.timedelta(seconds=quiet_seconds)
    early_cutoff = now - dt.timedelta(seconds=min(early, quiet_seconds))
    force_cutoff = now - dt.timedelta(seconds=force_complete_after_seconds) if force_complete_after_seconds else None
    candidates = _candidates(session, early_cutoff, force_cutoff, limit, called_ae_titles, exclude_called_ae_titles)
    if study_instance_uid is not None:
        candidates = candidates.where(Study.study_instance_uid == study_instance_uid)

    job_ids: list[uuid.UUID] = []
    for study_id, last_received_at, first_received_at in session.execute(candidates).all():
        reason = _reason(session, study_id, last_received_at, first_received_at, quiet_cutoff=quiet_cutoff,
                         early_cutoff=early_cutoff, force_cutoff=force_cutoff, required_series=required_series)
        if reason is None:
            continue
        job_id = _claim(session, study_id, last_received_at, now=now, reason=reason, quiet_seconds=quiet_seconds,
                        model_name=model_name, draft_non_image=draft_non_image, job_state=job_state, by=by, stat=stat)
        if job_id is not None:
            job_ids.append(job_id)
            job_ids.extend(_shadow_jobs(session, study_id, job_id, shadow_models, now, job_state))
    session.flush()
    if job_ids:
        logger.info("claimed %d complete studies", len(job_ids))
    return job_ids


def _reason(
    session: Session,
    study_id: uuid.UUID,
    last_received_at: dt.datetime,
    first_received_at: dt.datetime,
    *,
    quiet_cutoff: dt.datetime,
    early_cutoff: dt.datetime,
    force_cutoff: dt.datetime | None,
    required_series: Sequence[RequiredSeries],
) -> str | None:
    """Why the study is complete now (``forced``, ``quiet``, ``series_quiet``); None while it is not."""
    if force_cutoff is not None and first_received_at <= force_cutoff:
        return "forced"
    if required_series and not _has_required_series(session, study_id, required_series):
        return None  # waits for the missing series (or for the force-complete time)
    if last_received_at <= quiet_cutoff:
        return "quiet"
    if last_received_at <= early_cutoff:
        return "series_quiet"
    return None


def _candidates(
    session: Session,
    early_cutoff: dt.datetime,
    force_cutoff: dt.datetime | None,
    limit: int,
    called_ae_titles: Collection[str] | None,
    exclude_called_ae_titles: Collection[str],
) -> Select[uuid.UUID, dt.datetime, dt.datetime]:
    due = Study.last_received_at <= early_cutoff
    if force_cutoff is not None:
        due = due | (Study.first_received_at <= force_cutoff)
    candidates = (
        select(Study.id, Study.last_received_at, Study.first_received_at)
        .where(Study.state == StudyState.RECEIVING, due)
        .order_by(Study.last_received_at)
        .limit(limit)
    )
    if called_ae_titles is not None:
        candidates = candidates.where(Study.called_ae_title.in_(list(called_ae_titles)))
    if exclude_called_ae_titles:
        candidates = candidates.where(
            Study.called_ae_title.is_(None) | Study.called_ae_title.not_in(list(exclude_called_ae_titles))
        )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return candidates


def _claim(
    session: Session,
    study_id: uuid.UUID,
    last_received_at: dt.datetime,
    *,
    now: dt.datetime,
    reason: str,
    quiet_seconds: float,
    model_name: str,
    draft_non_image: bool,
    job_state: JobState = JobState.QUEUED,
    by: str = "sweep",
    stat: bool = False,
) -> uuid.UUID | None:
    """Compare-and-set one study to ``complete`` and give it its job; None when another sweeper won,
    an instance just arrived, or there is nothing to draft."""
    claimed = session.execute(
        update(Study)
        .where(
            Study.id == study_id,
            Study.state == StudyState.RECEIVING,
            Study.last_received_at <= last_received_at,
        )
        .values(state=StudyState.COMPLETE, completed_at=now)
        .returning(Study.study_instance_uid)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if claimed is None:
        return None
    with log_context(study=study_handle(claimed)):
        return _queue_job(session, study_id, now=now, reason=reason, quiet_seconds=quiet_seconds,
                          model_name=model_name, draft_non_image=draft_non_image, job_state=job_state, by=by,
                          stat=stat)


def _queue_job(session: Session, study_id: uuid.UUID, *, now: dt.datetime, reason: str, quiet_seconds: float,
               model_name: str, draft_non_image: bool, job_state: JobState, by: str,
               stat: bool) -> uuid.UUID | None:
    """The claimed study's job (and its events); None when it holds nothing to draft."""
    if not draft_non_image and not _has_images(session, study_id):
        record_event(session, EventTag.STUDY_COMPLETE, study_id=study_id, reason=reason, by=by, drafted=False)
        logger.info("a study holding no image instance is complete; no draft")
        return None
    previous = session.scalar(
        select(Job.id).where(Job.study_id == study_id, Job.shadow.is_(False)).order_by(Job.created_at.desc()).limit(1)
    )
    job = Job(
        id=uuid.uuid4(),
        study_id=study_id,
        state=job_state,
        model_name=model_name,
        created_at=now,
        supersedes_job_id=previous,
        priority=job_priority(session, study_id, pipeline_stat=stat),
    )
    session.add(job)
    session.flush()
    supersede_earlier_jobs(session, job)
    record_event(session, EventTag.STUDY_COMPLETE, study_id=study_id, quiet_seconds=quiet_seconds, reason=reason,
                 by=by)
    record_event(
        session,
        EventTag.JOB_QUEUED,
        study_id=study_id,
        job_id=job.id,
        model_name=model_name,
        supersedes_job_id=str(job.supersedes_job_id) if job.supersedes_job_id else None,
        priority=str(job.priority),
    )
    logger.info("study complete (%s); job queued", reason)
    return job.id


def _shadow_jobs(session: Session, study_id: uuid.UUID, job_id: uuid.UUID, models: Sequence[str], now: dt.datetime,
                 job_state: JobState) -> list[uuid.UUID]:
    """A shadow job of the study per shadow model, starting where the study's own job (``job_id``)
    starts (so it is compared with the same priors): drafted like any job, never delivered.  They
    replace the study's earlier shadow jobs not yet drafted, of what the study was before it grew."""
    jobs = [Job(id=uuid.uuid4(), study_id=study_id, state=job_state, model_name=m, created_at=now, shadow=True)
            for m in models]
    session.add_all(jobs)
    session.flush()
    for job in jobs:
        record_event(session, EventTag.JOB_QUEUED, study_id=study_id, job_id=job.id, model_name=job.model_name,
                     shadow=True)
    supersede_earlier_shadows(session, study_id, job_id, [job.id for job in jobs])
    return [job.id for job in jobs]


def _has_required_series(session: Session, study_id: uuid.UUID, rules: Sequence[RequiredSeries]) -> bool:
    series = session.execute(
        select(Series.modality, Series.series_description).where(Series.study_id == study_id)
    ).all()
    return all(any(series_matches(rule, modality, text) for modality, text in series) for rule in rules)


def _has_images(session: Session, study_id: uuid.UUID) -> bool:
    classes = session.scalars(select(Instance.sop_class_uid).where(Instance.study_id == study_id).distinct())
    return any(is_image_sop_class(uid) for uid in classes)


def claim_for_pipeline(
    session: Session,
    settings: Settings,
    pipeline: Pipeline,
    *,
    now: dt.datetime,
    limit: int = DEFAULT_BATCH,
    study_instance_uid: str | None = None,
    by: str = "sweep",
) -> list[uuid.UUID]:
    """Claim the complete studies sent to one pipeline's AE title, with that pipeline's rules and model."""
    others = [p.ae_title for p in settings.pipelines if p.ae_title != pipeline.ae_title]
    return claim_complete_studies(
        session,
        now=now,
        quiet_seconds=pipeline.study_quiet_seconds,
        model_name=pipeline.model_name,
        limit=limit,
        called_ae_titles=None if pipeline.is_default else [pipeline.ae_title],
        exclude_called_ae_titles=others if pipeline.is_default else (),
        series_quiet_seconds=pipeline.series_quiet_seconds,
        force_complete_after_seconds=pipeline.force_complete_after_seconds,
        required_series=pipeline.required_series,
        draft_non_image=pipeline.draft_non_image,
        job_state=first_job_state(settings),
        shadow_models=pipeline.shadow_models,
        study_instance_uid=study_instance_uid,
        by=by,
        stat=pipeline.stat,
    )


def claim_all(session: Session, settings: Settings, *, now: dt.datetime) -> list[uuid.UUID]:
    """Every pipeline's complete studies, higher-priority pipelines first; the job ids in that order."""
    job_ids: list[uuid.UUID] = []
    for pipeline in all_pipelines(settings):
        job_ids.extend(claim_for_pipeline(session, settings, pipeline, now=now))
    return job_ids


def claim_study(session: Session, settings: Settings, study_instance_uid: str, *, now: dt.datetime) -> list[uuid.UUID]:
    """Claim one study at the end of its quiet time (the listener's timer); its job ids, or none.

    The same compare-and-set as the sweep, by the rules of the study's pipeline, so a timer racing
    the sweep, or another listener's timer, makes no second job.  A study not complete by those rules
    yet (a required series missing) is left to the sweep.
    """
    row = session.execute(
        select(Study.id, Study.called_ae_title).where(
            Study.study_instance_uid == study_instance_uid, Study.state == StudyState.RECEIVING
        )
    ).one_or_none()
    if row is None:
        return []
    pipeline = pipeline_for(settings, row.called_ae_title)
    return claim_for_pipeline(session, settings, pipeline, now=now, limit=1, study_instance_uid=study_instance_uid,
                              by="timer")
