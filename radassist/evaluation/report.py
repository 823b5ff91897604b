"""A run's report: the figures overall and per slice, fairness by sex and age band with bootstrap
intervals, per-finding scores, the best and worst pairs, timings per study; as JSON and as one
self-contained HTML file (styles inline, plots as inline SVG, no script, nothing fetched).

Every figure is the Quality page's (:mod:`radassist.quality.figures`), computed with the run's
``[quality]`` settings; studies without a draft are counted apart and in no figure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radassist.config.quality import QualitySettings
from radassist.evaluation.results import StudyResult, load_manifest, load_results, write_json, write_text
from radassist.quality import FindingScore, PairTable
from radassist.quality.figures import FIGURES, Estimate, estimate
from radassist.quality.slices import SLICE_TITLES

SLICE_METRICS = ("finding_f1_micro", "critical_miss_rate", "rouge_l", "edit_rate_median")
"""The figures given per slice and per fairness group."""
REPORT_SLICES = ("profile", "modality", "patient_sex", "age_band", "model_name", "prompt_version")
FAIRNESS_SLICES = ("patient_sex", "age_band")
EXAMPLES = 5
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


@dataclass(frozen=True)
class GroupFigures:
    """The figures of the studies of one slice value (``unknown`` when the value is not known)."""

    slice: str
    value: str
    studies: int
    figures: tuple[Estimate, ...]


@dataclass(frozen=True)
class Example:
    handle: str
    study_instance_uid: str
    profile: str | None
    finding_f1: float
    rouge_l: float
    edit_rate: float
    critical_misses: tuple[str, ...]
    draft: str
    reference: str


@dataclass(frozen=True)
class StepTimes:
    step: str
    mean_s: float
    median_s: float
    p95_s: float
    max_s: float


@dataclass(frozen=True)
class EvalReport:
    run: str
    dataset: str
    model_names: tuple[str, ...]
    prompt_versions: tuple[str, ...]
    labelers: tuple[str, ...]
    written_at: str
    studies: int
    measured: int
    failures: dict[str, int]
    overall: tuple[Estimate, ...]
    slices: tuple[GroupFigures, ...]
    fairness: tuple[GroupFigures, ...]
    per_finding: tuple[FindingScore, ...]
    best: tuple[Example, ...]
    worst: tuple[Example, ...]
    timings: tuple[StepTimes, ...]
    studies_per_minute: float | None
    per_study: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _table(results: Sequence[StudyResult]) -> PairTable:
    return PairTable.from_pairs([r.pair() for r in results])


def group_figures(results: Sequence[StudyResult], slice_name: str, settings: QualitySettings) -> list[GroupFigures]:
    """The slice's values, each with the figures of its studies (values in order, unknown last)."""
    groups: dict[str, list[StudyResult]] = defaultdict(list)
    for result in results:
        groups[str(getattr(result, slice_name) or "unknown")].append(result)
    ordered = sorted(groups, key=lambda v: (v == "unknown", v))
    return [GroupFigures(slice_name, value, len(groups[value]),
                         tuple(estimate(_table(groups[value]), m, settings) for m in SLICE_METRICS))
            for value in ordered]


def _findings(table: PairTable) -> tuple[FindingScore, ...]:
    lines = table.findings_summary().per_finding
    return tuple(sorted(lines, key=lambda line: (-line.support, line.finding)))


def _example(result: StudyResult) -> Example:
    pair = result.pair()
    return Example(result.handle, result.study_instance_uid, result.profile, pair.finding_f1, pair.text.rouge_l,
                   pair.text.edit_rate, pair.critical_misses, result.draft or "", result.reference)


def _ranked(results: Sequence[StudyResult]) -> list[StudyResult]:
    """Best first: finding F1, then fewer critical misses, then ROUGE-L."""
    def key(result: StudyResult) -> tuple[float, int, float, str]:
        pair = result.pair()
        return (-pair.finding_f1, len(pair.critical_misses), -pair.text.rouge_l, result.handle)

    return sorted(results, key=key)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timings(results: Sequence[StudyResult]) -> tuple[tuple[StepTimes, ...], float | None]:
    if not results:
        return (), None
    steps = {"prepare": [r.timings.prepare_s for r in results], "draft": [r.timings.draft_s for r in results],
             "measure": [r.timings.measure_s for r in results], "total": [r.timings.total_s for r in results]}
    times = tuple(StepTimes(name, statistics.fmean(v), statistics.median(v), _percentile(v, 0.95), max(v))
                  for name, v in steps.items())
    mean_total = statistics.fmean(steps["total"])
    return times, (60.0 / mean_total if mean_total > 0 else None)


def build_report(run: Path, settings: QualitySettings) -> EvalReport:
    """The report of every result in ``run``."""
    manifest = load_manifest(run)
    results = load_results(run)
    measured = [r for r in results if r.measured]
    table = _table(measured)
    ranked = _ranked(measured)
    timings, per_minute = _timings(results)
    return EvalReport(
        run=str(run.resolve()),
        dataset=str(manifest.get("fingerprint", {}).get("dataset", "")),
        model_names=tuple(sorted({r.model_name for r in results})),
        prompt_versions=tuple(sorted({r.prompt_version for r in results if r.prompt_version})),
        labelers=tuple(sorted({r.pair().labeler for r in measured})),
        written_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        studies=len(results),
        measured=len(measured),
        failures=dict(Counter(r.error_code or "unknown" for r in results if not r.measured)),
        overall=tuple(estimate(table, metric, settings) for metric, _ in FIGURES),
        slices=tuple(g for name in REPORT_SLICES for g in group_figures(measured, name, settings)),
        fairness=tuple(g for name in FAIRNESS_SLICES for g in group_figures(measured, name, settings)),
        per_finding=_findings(table),
        best=tuple(_example(r) for r in ranked[:EXAMPLES]),
        worst=tuple(_example(r) for r in reversed(ranked[-EXAMPLES:])) if len(ranked) > EXAMPLES else (),
        timings=timings,
        studies_per_minute=per_minute,
        per_study=tuple(_per_study(r) for r in results),
    )


def _per_study(result: StudyResult) -> dict[str, Any]:
    """One study's line of the report: its figures (when drafted) and timings."""
    line: dict[str, Any] = {"handle": result.handle, "profile": result.profile, "modality": result.modality,
                            "patient_sex": result.patient_sex, "age_band": result.age_band, "images": result.images,
                            "error_code": result.error_code, **dataclasses.asdict(result.timings),
                            "total_s": result.timings.total_s}
    if result.measured:
        pair = result.pair()
        line.update(finding_f1=pair.finding_f1, rouge_l=pair.text.rouge_l, edit_rate=pair.text.edit_rate,
                    critical_misses=list(pair.critical_misses), laterality_swaps=list(pair.laterality.swaps))
    return line


def write_report(run: Path, settings: QualitySettings) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into the run folder; their paths."""
    from radassist.evaluation.html import render_report

    report = build_report(run, settings)
    write_json(run / REPORT_JSON, report.to_dict())
    html = run / REPORT_HTML
    write_text(html, render_report(report, {name: SLICE_TITLES.get(name, name) for name in REPORT_SLICES}))
    return run / REPORT_JSON, html

