"""A resumable evaluation run: each study prepared, drafted and measured exactly as the service does.

The run folder holds ``run.json`` (the data set, and the settings that decide what the model writes
and how it is measured) and ``studies/<handle>.json`` per study, each written whole as soon as its
batch is done.  Running the same command again resumes: studies with a result are skipped (one that
failed transiently, e.g. a busy model server, is tried again), so an interruption costs at most the
batch in flight.  A run folder refuses settings other than those it was started with, since its
figures would then mix two configurations.

Studies are drafted ``[model] batch_size`` at a time through the drafting stage's own functions:
:func:`~radassist.drafting.prepare.prepare_job` and
:func:`~radassist.drafting.generate.draft_prepared` (no database: there is no RIS order, as for a
study whose order never arrived), then measured by :class:`radassist.quality.Scorer`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radassist import __version__
from radassist.config import Settings
from radassist.drafting.claim import ClaimedJob
from radassist.drafting.generate import draft_prepared
from radassist.drafting.prepare import PreparedJob, prepare_job
from radassist.errors import RadAssistError, TransientFailure
from radassist.evaluation.dataset import Dataset, EvalStudy
from radassist.evaluation.results import (
    MANIFEST,
    StudyResult,
    Timings,
    load_manifest,
    load_result,
    result_path,
    write_json,
)
from radassist.identifiers import study_handle
from radassist.models.base import DraftResult
from radassist.models.loader import get_draft_model
from radassist.models.prompts import PROMPT_VERSION
from radassist.quality.normalise import draft_report
from radassist.quality.pair import Scorer
from radassist.quality.slices import age_band

logger = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("5d6c0a43-7c0e-4b8e-9d0e-2f1b3c8e6a11")
"""Surrogate job and study ids of an evaluated study are derived from its UID in this namespace."""
MODEL_KEYS_IGNORED = frozenset({"api_key", "concurrency", "request_timeout_s", "batch_size", "device"})
QUALITY_KEYS_IGNORED = frozenset({"bootstrap_samples", "bootstrap_confidence", "bootstrap_seed", "measure_batch",
                                  "shadows", "drift_metric", "drift_threshold", "drift_window_days",
                                  "drift_min_pairs"})


class RunMismatch(ValueError):
    """The run folder was started with other settings or another data set."""


@dataclass(frozen=True)
class RunOutcome:
    run: Path
    studies: int
    done_before: int
    drafted: int
    failed: int
    model_load_s: float


def fingerprint(settings: Settings, dataset: Dataset) -> dict[str, Any]:
    """What decides a run's figures: the data set, the model settings, the prompt version, the labelling."""
    model = {k: v for k, v in settings.model.model_dump(mode="json").items() if k not in MODEL_KEYS_IGNORED}
    quality = {k: v for k, v in settings.quality.model_dump(mode="json").items() if k not in QUALITY_KEYS_IGNORED}
    return {"dataset": str(dataset.folder), "references": str(dataset.references_file), "model": model,
            "prompt_version": PROMPT_VERSION, "quality": quality}


def open_run(run: Path, settings: Settings, dataset: Dataset) -> dict[str, Any]:
    """Start the run folder, or check that it was started with the same settings; its manifest."""
    wanted = fingerprint(settings, dataset)
    if (run / MANIFEST).is_file():
        manifest = load_manifest(run)
        differing = sorted(k for k in wanted if manifest.get("fingerprint", {}).get(k) != wanted[k])
        if differing:
            raise RunMismatch(f"{run} was started with another {', '.join(differing)}; "
                              "start a new run folder (--run) to evaluate these settings")
        return manifest
    manifest = {"fingerprint": wanted, "started_at": dt.datetime.now(dt.UTC).isoformat(), "radassist": __version__}
    write_json(run / MANIFEST, manifest)
    return manifest


def pending_studies(run: Path, dataset: Dataset) -> list[EvalStudy]:
    """The data set's studies without a result, or whose last try failed transiently."""
    out = []
    for study in dataset.studies:
        done = load_result(result_path(run, study_handle(study.study_instance_uid)))
        if done is None or (done.error_code is not None and done.retryable):
            out.append(study)
    return out


def _claimed(study: EvalStudy, model_name: str) -> ClaimedJob:
    key = uuid.uuid5(NAMESPACE, study.study_instance_uid)
    return ClaimedJob(job_id=key, study_id=key, attempts=1, model_name=model_name, paths=tuple(study.paths),
                      accession_hash=None)


class Runner:
    """Drafts and measures the pending studies of one run, batch by batch."""

    def __init__(self, run: Path, settings: Settings) -> None:
        self.run = run
        self.settings = settings
        self.scorer = Scorer(settings.quality)

    def _base(self, study: EvalStudy, timings: Timings) -> dict[str, Any]:
        return {
            "handle": study_handle(study.study_instance_uid),
            "study_instance_uid": study.study_instance_uid,
            "model_name": self.settings.model.name,
            "modality": study.modality,
            "patient_sex": study.sex,
            "age_band": age_band(study.age, self.settings.quality.age_bands),
            "reference": study.reference or "",
            "timings": timings,
        }

    def _failed(self, study: EvalStudy, error: RadAssistError, timings: Timings) -> StudyResult:
        return StudyResult(**self._base(study, timings), model_revision=None, prompt_version=PROMPT_VERSION,
                           profile=None, error_code=error.code, error_message=error.message[:500],
                           retryable=isinstance(error, TransientFailure))

    def _measured(self, study: EvalStudy, job: PreparedJob, result: DraftResult, prepare_s: float,
                  draft_s: float, batch: int) -> StudyResult:
        profile = job.profile.name if job.profile is not None else "general"
        text = draft_report(result.findings, result.impression)
        started = time.perf_counter()
        metrics = self.scorer.compare(text, study.reference or "", profile)
        timings = Timings(prepare_s, draft_s, time.perf_counter() - started, batch)
        warnings = tuple(str(w) for w in result.generation.get("consistency_warnings") or ())
        return StudyResult(**self._base(study, timings), model_revision=result.model_revision,
                           prompt_version=result.prompt_version, profile=profile, draft=text,
                           metrics=metrics.to_dict(), images=len(job.study.images), warnings=warnings)

    def batch(self, studies: Sequence[EvalStudy]) -> list[StudyResult]:
        """Prepare, draft (one model call) and measure ``studies``; each result is written as it is made."""
        prepared: list[tuple[EvalStudy, PreparedJob, float]] = []
        out: list[StudyResult] = []
        for study in studies:
            started = time.perf_counter()
            job = prepare_job(_claimed(study, self.settings.model.name), self.settings.model, None)
            seconds = time.perf_counter() - started
            if isinstance(job, RadAssistError):
                out.append(self._failed(study, job, Timings(seconds, 0.0, 0.0, len(studies))))
            else:
                prepared.append((study, job, seconds))
        started = time.perf_counter()
        drafts = draft_prepared([job for _, job, _ in prepared], self.settings.model)
        share = (time.perf_counter() - started) / max(1, len(prepared))
        for (study, job, prepare_s), draft in zip(prepared, drafts, strict=True):
            if isinstance(draft, RadAssistError):
                out.append(self._failed(study, draft, Timings(prepare_s, share, 0.0, len(prepared))))
            else:
                out.append(self._measured(study, job, draft, prepare_s, share, len(prepared)))
        for result in out:
            write_json(result_path(self.run, result.handle), result.to_dict())
        return out


def load_model(settings: Settings) -> float:
    """Load the model before the first batch (so no study's timing carries it); the seconds it took."""
    started = time.perf_counter()
    get_draft_model(settings.model)
    return time.perf_counter() - started


def run_eval(
    dataset: Dataset, settings: Settings, run: Path, *, limit: int | None = None,
    on_start: Callable[[int], object] | None = None, progress: Callable[[int], object] | None = None,
) -> RunOutcome:
    """Draft and measure the pending studies of ``dataset`` into ``run`` (at most ``limit`` of them).

    ``on_start`` gets the number of studies done before; ``progress`` the number done by each batch.
    """
    open_run(run, settings, dataset)
    pending = pending_studies(run, dataset)
    done_before = len(dataset.studies) - len(pending)
    if on_start is not None:
        on_start(done_before)
    if limit is not None:
        pending = pending[:limit]
    load_s = load_model(settings) if pending else 0.0
    runner = Runner(run, settings)
    drafted = failed = 0
    size = settings.model.batch_size
    for start in range(0, len(pending), size):
        results = runner.batch(pending[start : start + size])
        drafted += sum(r.measured for r in results)
        failed += sum(not r.measured for r in results)
        if progress is not None:
            progress(len(results))
    return RunOutcome(run, len(dataset.studies), done_before, drafted, failed, load_s)
