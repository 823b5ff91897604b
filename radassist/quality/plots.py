"""Plots of quality figures as inline SVG, drawn on the server with matplotlib: no script, no CDN.

Hospitals run offline, so the Quality page and the evaluation report carry their plots inside the
HTML.  Each function returns an ``<svg>`` element (text kept as text, ids salted per plot so several
plots on one page never share an id) and takes plain values, so the page and ``radassist eval``
draw the same plots.  Undefined values (None) leave a gap in a line.  matplotlib is imported on
first use.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any

COLOURS = ("#2c6fd6", "#2e8b57", "#c98a12", "#7b4fc4", "#c0392b", "#5b6472")
WIDTH_IN = 7.5


def _render(figure: Any, salt: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", bbox_inches="tight",
                       metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(height_in: float, width_in: float = WIDTH_IN) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in))
    figure.set_facecolor("white")
    return figure


def _tidy(axes: Any) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#dde2ea", linewidth=0.6)
    axes.set_axisbelow(True)


def trend_svg(
    weeks: Sequence[dt.date], series: Mapping[str, Sequence[float | None]], pairs: Sequence[int], *, salt: str = "trend"
) -> str:
    """Lines of 0-1 figures week by week over bars of the pairs per week."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    figure = _figure(3.0, width_in=11.0)
    counts = figure.subplots()
    counts.bar(list(weeks), list(pairs), width=5, color="#e6eaf1", label="pairs")
    counts.set_ylabel("pairs per week", color="#8a919c")
    counts.tick_params(axis="y", colors="#8a919c")
    counts.spines[["top"]].set_visible(False)
    lines = counts.twinx()
    for index, (label, values) in enumerate(series.items()):
        ys = [float("nan") if v is None else v for v in values]
        lines.plot(list(weeks), ys, marker="o", markersize=3.5, linewidth=1.6, color=COLOURS[index % len(COLOURS)],
                   label=label)
    lines.set_ylim(0, max([1.0, *(v for vs in series.values() for v in vs if v is not None)]) * 1.05)
    lines.yaxis.tick_left()
    lines.yaxis.set_label_position("left")
    counts.yaxis.tick_right()
    counts.yaxis.set_label_position("right")
    lines.spines[["top"]].set_visible(False)
    lines.grid(axis="y", color="#dde2ea", linewidth=0.6)
    lines.legend(loc="upper left", bbox_to_anchor=(0, -0.12), ncol=max(1, len(series)), frameon=False, fontsize=8)
    locator = AutoDateLocator(minticks=3, maxticks=10)  # type: ignore[no-untyped-call]
    counts.xaxis.set_major_locator(locator)
    counts.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    return _render(figure, salt)


def bars_svg(
    labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *, salt: str = "bars", xlabel: str = ""
) -> str:
    """Horizontal grouped bars (e.g. precision and recall per finding), 0-1; None draws no bar."""
    height = 0.8 / max(1, len(series))
    figure = _figure(0.6 + 0.28 * max(1, len(labels)) * max(1, len(series)) ** 0.5)
    axes = figure.subplots()
    positions = range(len(labels))
    for index, (name, values) in enumerate(series.items()):
        ys = [p + (index - (len(series) - 1) / 2) * height for p in positions]
        axes.barh(ys, [0.0 if v is None else v for v in values], height=height, label=name,
                  color=COLOURS[index % len(COLOURS)])
    axes.set_yticks(list(positions), list(labels), fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel(xlabel)
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="x", color="#dde2ea", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    return _render(figure, salt)


def intervals_svg(
    labels: Sequence[str], estimates: Sequence[float | None], lows: Sequence[float | None],
    highs: Sequence[float | None], *, salt: str = "intervals", xlabel: str = "", reference: float | None = None,
) -> str:
    """One point per group with its confidence interval (a forest plot); ``reference`` draws a line."""
    figure = _figure(0.6 + 0.3 * max(1, len(labels)))
    axes = figure.subplots()
    for row, (estimate, low, high) in enumerate(zip(estimates, lows, highs, strict=True)):
        if estimate is None:
            continue
        if low is not None and high is not None:
            axes.plot([low, high], [row, row], color=COLOURS[0], linewidth=2)
        axes.plot([estimate], [row], marker="o", color=COLOURS[0])
    if reference is not None:
        axes.axvline(reference, color="#8a919c", linewidth=0.8, linestyle="--")
    axes.set_yticks(list(range(len(labels))), list(labels), fontsize=8)
    axes.set_ylim(-0.6, len(labels) - 0.4)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    _tidy(axes)
    axes.grid(axis="x", color="#dde2ea", linewidth=0.6)
    return _render(figure, salt)


def histogram_svg(values: Sequence[float], *, salt: str = "histogram", xlabel: str = "", bins: int = 20) -> str:
    """The distribution of one per-study figure."""
    figure = _figure(2.0)
    axes = figure.subplots()
    axes.hist(list(values), bins=bins, color=COLOURS[0], edgecolor="white")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("studies")
    _tidy(axes)
    return _render(figure, salt)
