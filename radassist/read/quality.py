"""The Quality page's read model: the measured pairs of a window and slice, and what they add up to.

The pairs come from :mod:`radassist.read.quality_pairs`.  Every figure is computed by
:mod:`radassist.quality` (:class:`~radassist.quality.PairTable`, bootstrap intervals with the
``[quality]`` samples, confidence and seed), so the page, the metrics and ``radassist eval`` agree.
The acceptance rate counts the radiologists' verdicts on the drafts of the window and slice
(whether or not their final arrived): useful as is, or useful with edits, over all verdicts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config.quality import QualitySettings
from radassist.db.tables import Draft, DraftMeasurement, DraftVerdict, Job, Study, Verdict
from radassist.quality import FindingScore, PairMetrics, PairTable, figure
from radassist.quality.figures import FIGURES, estimate, number
from radassist.quality.slices import SLICES, age_band
from radassist.read.quality_compare import model_rows, shadow_comparisons
from radassist.read.quality_pairs import LoadedPair, count_not_measured, load_pairs
from radassist.read.quality_rows import (
    Acceptance,
    CriticalMissRow,
    Figure,
    QualityFilter,
    QualityView,
    TrendPoint,
)

CRITICAL_MISSES_SHOWN = 100
OPTIONS_PER_SLICE = 200


def verdicts(session: Session, where: QualityFilter, edges: Sequence[int]) -> list[tuple[dt.datetime, Verdict]]:
    """(when the draft was written, verdict) of every verdict on a draft of the window and slice."""
    profile = Draft.generation["profile"].as_string()
    stmt = (
        select(Draft.created_at, DraftVerdict.verdict, Study.patient_age)
        .join(Draft, Draft.id == DraftVerdict.draft_id)
        .join(Job, Job.id == Draft.job_id)
        .join(Study, Study.id == Job.study_id)
        .where(Draft.created_at >= where.since, Draft.created_at < where.until)
    )
    columns: dict[str, Any] = {
        "model_name": Draft.model_name, "prompt_version": Draft.prompt_version, "profile": profile,
        "modality": Study.modality, "calling_ae_title": Study.calling_ae_title, "patient_sex": Study.patient_sex,
    }
    for name, column in columns.items():
        value = getattr(where, name)
        if value is not None:
            stmt = stmt.where(column == value)
    if where.drafts != "all":
        stmt = stmt.where(Job.shadow.is_(where.drafts == "shadow"))
    return [(r.created_at, Verdict(r.verdict)) for r in session.execute(stmt)
            if where.age_band is None or age_band(r.patient_age, edges) == where.age_band]


def acceptance(rows: Iterable[tuple[dt.datetime, Verdict]]) -> Acceptance:
    counts = {v: 0 for v in Verdict}
    for _, verdict in rows:
        counts[verdict] += 1
    return Acceptance.of(counts[Verdict.USEFUL_AS_IS], counts[Verdict.USEFUL_WITH_EDITS], counts[Verdict.NOT_USEFUL])


def figures(table: PairTable, settings: QualitySettings) -> tuple[Figure, ...]:
    """The headline figures of ``table``, each with its bootstrap interval."""
    found = (estimate(table, metric, settings) for metric, _ in FIGURES)
    return tuple(Figure(e.metric, e.title, e.value, e.low, e.high, e.lower_is_better) for e in found)


def per_finding(table: PairTable) -> tuple[FindingScore, ...]:
    """Precision, recall and F1 of each finding, most often reported first."""
    rows = table.findings_summary().per_finding
    return tuple(sorted(rows, key=lambda r: (-r.support, -(r.true_positives + r.false_positives), r.finding)))


def critical_misses(pairs: Sequence[LoadedPair]) -> tuple[CriticalMissRow, ...]:
    """The pairs whose draft missed a critical finding of the final, newest first."""
    missed = [p for p in reversed(pairs) if p.metrics.critical_misses][:CRITICAL_MISSES_SHOWN]
    return tuple(CriticalMissRow(p.study_id, p.drafted_at, p.model_name, p.shadow, p.modality,
                                 p.metrics.critical_misses) for p in missed)


def week_of(at: dt.datetime) -> dt.date:
    """The Monday (UTC) of ``at``'s week."""
    day = at.astimezone(dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


def trend(pairs: Sequence[LoadedPair], given: Sequence[tuple[dt.datetime, Verdict]]) -> tuple[TrendPoint, ...]:
    """The headline figures week by week."""
    by_week: dict[dt.date, list[PairMetrics]] = defaultdict(list)
    for pair in pairs:
        by_week[week_of(pair.drafted_at)].append(pair.metrics)
    verdicts_by_week: dict[dt.date, list[tuple[dt.datetime, Verdict]]] = defaultdict(list)
    for row in given:
        verdicts_by_week[week_of(row[0])].append(row)
    points = []
    for week in sorted(set(by_week) | set(verdicts_by_week)):
        table = PairTable.from_pairs(by_week.get(week, []))

        def value(metric: str, table: PairTable = table) -> float | None:
            return number(figure(table, metric)) if len(table) else None

        points.append(TrendPoint(week, len(table), value("finding_f1_micro"), value("rouge_l"),
                                 value("edit_rate_median"), value("critical_miss_rate"),
                                 acceptance(verdicts_by_week.get(week, [])).rate))
    return tuple(points)


def slice_options(session: Session) -> dict[str, tuple[str, ...]]:
    """The values each slice column takes among the measured pairs, sorted."""
    options = {}
    for name in SLICES:
        column = getattr(DraftMeasurement, name)
        values = session.scalars(select(column).where(column.is_not(None)).distinct().limit(OPTIONS_PER_SLICE))
        options[name] = tuple(sorted(str(v) for v in values))
    return options


def quality_view(session: Session, where: QualityFilter, settings: QualitySettings) -> QualityView:
    """Everything the Quality page shows for ``where``."""
    pairs = load_pairs(session, where)
    table = PairTable.from_pairs([p.metrics for p in pairs])
    given = verdicts(session, where, settings.age_bands)
    compared = load_pairs(session, replace(where, drafts="all")) if where.drafts != "all" else pairs
    return QualityView(
        filter=where,
        pairs=len(pairs),
        not_measured=count_not_measured(session, where),
        labelers=tuple(sorted({p.metrics.labeler for p in pairs})),
        acceptance=acceptance(given),
        figures=figures(table, settings),
        per_finding=per_finding(table),
        critical_misses=critical_misses(pairs),
        trend=trend(pairs, given),
        models=model_rows(compared),
        comparisons=shadow_comparisons(compared, settings),
        options=slice_options(session),
    )
