"""The evaluation report and the run comparison as self-contained HTML (Jinja2, autoescaped).

Styles are inline and plots are inline SVG (:mod:`radassist.quality.plots`): the file opens in any
browser of an offline hospital network and can be mailed as it is.  Report texts are escaped like
every other value.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from radassist.quality import plots

if TYPE_CHECKING:
    from radassist.evaluation.compare import RunComparison
    from radassist.evaluation.report import EvalReport, GroupFigures

TEMPLATES = Path(__file__).parent / "templates"
PLOTTED_FINDINGS = 20


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    env.filters["fixed"] = lambda v, digits=3: "—" if v is None else f"{v:.{digits}f}"
    env.filters["signed"] = lambda v: "—" if v is None else f"{v:+.3f}"
    env.filters["seconds"] = lambda v: "—" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")
    return env


def _forest(groups: list[GroupFigures], metric: str, salt: str) -> str:
    values = [next(f for f in g.figures if f.metric == metric) for g in groups]
    labels = [f"{g.value} (n={g.studies})" for g in groups]
    return plots.intervals_svg(labels, [v.value for v in values], [v.low for v in values],
                               [v.high for v in values], salt=salt, xlabel=values[0].title if values else "")


def report_plots(report: EvalReport) -> dict[str, str]:
    """The report's plots by name (a plot with nothing to show is left out)."""
    out: dict[str, str] = {}
    measured = [line for line in report.per_study if "rouge_l" in line]
    if measured:
        out["rouge_l"] = plots.histogram_svg([line["rouge_l"] for line in measured], salt="rouge", xlabel="ROUGE-L")
        out["edit_rate"] = plots.histogram_svg([line["edit_rate"] for line in measured], salt="edit",
                                               xlabel="edit rate")
    shown = [f for f in report.per_finding if f.support or f.false_positives][:PLOTTED_FINDINGS]
    if shown:
        out["findings"] = plots.bars_svg([f.finding for f in shown], {"precision": [f.precision for f in shown],
                                         "recall": [f.recall for f in shown]}, salt="findings")
    for name in ("patient_sex", "age_band"):
        groups = [g for g in report.fairness if g.slice == name]
        if groups:
            out[f"{name}_f1"] = _forest(groups, "finding_f1_micro", f"{name}-f1")
            out[f"{name}_rouge"] = _forest(groups, "rouge_l", f"{name}-rouge")
    if report.per_study:
        out["timings"] = plots.histogram_svg([line["total_s"] for line in report.per_study], salt="timings",
                                             xlabel="seconds per study (prepare + draft + measure)")
    return out


def render_report(report: EvalReport, slice_titles: dict[str, str]) -> str:
    template = _environment().get_template("report.html")
    overall = {e.metric: e for e in report.overall}
    return str(template.render(report=report, overall=overall, plots=report_plots(report), slice_titles=slice_titles))


def render_comparison(comparison: RunComparison) -> str:
    template = _environment().get_template("compare.html")
    diffs = comparison.differences
    plot = plots.intervals_svg([d.title for d in diffs], [d.difference for d in diffs], [d.low for d in diffs],
                               [d.high for d in diffs], salt="compare", xlabel="B − A", reference=0.0)
    return str(template.render(c=comparison, plot=plot))
