"""Two runs side by side: every figure of run B minus run A over the studies both drafted.

The studies are matched by their handle (a hash of the Study Instance UID) and put in the same
order in both runs, so :func:`radassist.quality.paired_difference` resamples the same studies from
both: differences in how hard the studies were cancel out.  Studies drafted in one run only are
counted and left out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radassist.config.quality import QualitySettings
from radassist.evaluation.results import StudyResult, load_manifest, load_results
from radassist.quality import PairTable, figure, paired_difference
from radassist.quality.figures import FIGURES, number
from radassist.quality.summary import LOWER_IS_BETTER


@dataclass(frozen=True)
class RunDifference:
    metric: str
    title: str
    a: float | None
    b: float | None
    difference: float | None
    low: float | None
    high: float | None
    lower_is_better: bool


@dataclass(frozen=True)
class RunComparison:
    run_a: str
    run_b: str
    model_a: str
    model_b: str
    studies: int
    only_a: int
    only_b: int
    differences: tuple[RunDifference, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _measured(run: Path) -> dict[str, StudyResult]:
    load_manifest(run)  # refuses a folder that is not a run
    return {r.handle: r for r in load_results(run) if r.measured}


def _model(results: dict[str, StudyResult]) -> str:
    return ", ".join(sorted({r.model_name for r in results.values()})) or "—"


def compare_runs(run_a: Path, run_b: Path, settings: QualitySettings) -> RunComparison:
    """Run B against run A on the studies both drafted (B − A, paired intervals)."""
    a, b = _measured(run_a), _measured(run_b)
    common = sorted(set(a) & set(b))
    table_a = PairTable.from_pairs([a[h].pair() for h in common])
    table_b = PairTable.from_pairs([b[h].pair() for h in common])
    differences = []
    for metric, title in FIGURES:
        values: tuple[float | None, float | None, float | None] = (None, None, None)
        if common:
            interval = paired_difference(table_a, table_b, metric, samples=settings.bootstrap_samples,
                                         confidence=settings.bootstrap_confidence, seed=settings.bootstrap_seed)
            values = (number(interval.estimate), number(interval.low), number(interval.high))
        differences.append(RunDifference(
            metric, title, number(figure(table_a, metric)) if common else None,
            number(figure(table_b, metric)) if common else None, *values, metric in LOWER_IS_BETTER,
        ))
    return RunComparison(str(run_a.resolve()), str(run_b.resolve()), _model(a), _model(b), len(common),
                         len(set(a) - set(b)), len(set(b) - set(a)), tuple(differences))


def as_text(comparison: RunComparison) -> str:
    """The comparison as a plain table for the terminal."""
    lines = [f"A: {comparison.run_a} ({comparison.model_a})", f"B: {comparison.run_b} ({comparison.model_b})",
             f"{comparison.studies} studies in both runs ({comparison.only_a} only in A, {comparison.only_b} only in B)",
             "", f"{'figure':<22}{'A':>8}{'B':>8}{'B - A':>9}  interval"]

    def fixed(value: float | None, sign: str = "") -> str:
        return "—" if value is None else f"{value:{sign}.3f}"

    for d in comparison.differences:
        interval = f"[{fixed(d.low, '+')}, {fixed(d.high, '+')}]" if d.low is not None else "—"
        lines.append(f"{d.title:<22}{fixed(d.a):>8}{fixed(d.b):>8}{fixed(d.difference, '+'):>9}  {interval}")
    return "\n".join(lines)
