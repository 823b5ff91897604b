"""``radassist eval``: evaluate the configured model on a data set, compare two runs, or redo a report.

* ``radassist eval DATASET [--references FILE] [--run DIR] [--model NAME] [--limit N]`` drafts and
  measures every study of DATASET with a reference report, with a progress bar (rate, time left),
  then writes ``report.json`` and ``report.html`` into the run folder.  The same command again
  resumes an interrupted run.
* ``radassist eval compare RUN_A RUN_B [--out DIR]``: B against A, paired differences and intervals.
* ``radassist eval report RUN``: write the run's report again (e.g. after changing ``[quality]``
  bootstrap settings).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

EXIT_INTERRUPTED = 130
DEFAULT_RUNS = Path("radassist-eval")


def add_eval_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``eval`` on the main parser's subcommands."""
    parser = sub.add_parser(
        "eval", parents=[common], help="evaluate the model on a folder of studies with reference reports",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", nargs="+", metavar="DATASET | compare RUN_A RUN_B | report RUN")
    parser.add_argument("--references", type=Path, help="CSV or JSONL of reference reports (default: "
                        "references.csv or references.jsonl in DATASET)")
    parser.add_argument("--run", type=Path, help=f"run folder (default: {DEFAULT_RUNS}/<dataset>--<model>)")
    parser.add_argument("--model", help="draft with this model instead of [model] name (hub id or folder)")
    parser.add_argument("--limit", type=int, help="draft at most this many more studies, then stop")
    parser.add_argument("--out", type=Path, help="compare: folder for compare.json and compare.html "
                        "(default: RUN_B/compare-with-<RUN_A>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log the drafting stage's INFO lines")
    parser.set_defaults(func=cmd_eval)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")[-60:] or "model"


def default_run(dataset: Path, model_name: str) -> Path:
    """``radassist-eval/<dataset>--<model>``: the same command finds the same folder, so it resumes."""
    return DEFAULT_RUNS / f"{_slug(dataset.resolve().name)}--{_slug(model_name)}"


def _usage(message: str) -> int:
    print(f"radassist eval: {message}", file=sys.stderr)
    return 2


def cmd_eval(args: argparse.Namespace) -> int:
    from radassist.config import load_settings
    from radassist.logging import configure_logging

    settings = load_settings(args.config)
    configure_logging(settings.logging.level if args.verbose else "WARNING")
    if args.model:
        settings = settings.model_copy(update={"model": settings.model.model_copy(update={"name": args.model})})
    target = args.target
    if target[0] == "compare":
        return _compare(target, args, settings) if len(target) == 3 else _usage("compare needs RUN_A and RUN_B")
    if target[0] == "report":
        return _report(Path(target[1]), settings) if len(target) == 2 else _usage("report needs one RUN")
    if len(target) != 1:
        return _usage("give one DATASET folder (or: compare RUN_A RUN_B, report RUN)")
    if args.limit is not None and args.limit < 1:
        return _usage("--limit must be at least 1")
    return _evaluate(Path(target[0]), args, settings)


class EvalProgress:
    """tqdm's bar (rate, time left) over the whole data set, started at the studies done before."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.bar: Any = None

    def start(self, done: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=done, unit="study", desc="radassist eval", file=sys.stderr,
                        disable=not self.enabled, dynamic_ncols=True)

    def advance(self, studies: int) -> None:
        if self.bar is not None:
            self.bar.update(studies)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _evaluate(folder: Path, args: argparse.Namespace, settings: Any) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from radassist.errors import RadAssistError
    from radassist.evaluation.dataset import DatasetError, load_dataset
    from radassist.evaluation.run import RunMismatch, run_eval

    try:
        dataset = load_dataset(folder, args.references)
    except DatasetError as exc:
        return _usage(str(exc))
    if not dataset.studies:
        return _usage(f"no study in {dataset.folder} has a reference report in {dataset.references_file.name}")
    run = args.run or default_run(folder, settings.model.name)
    print(f"{len(dataset.studies)} studies with a reference ({dataset.without_reference} without, "
          f"{dataset.unmatched_references} references without a study); run folder {run}", file=sys.stderr)
    progress = EvalProgress(len(dataset.studies), not args.no_progress)
    try:
        with logging_redirect_tqdm():
            outcome = run_eval(dataset, settings, run, limit=args.limit, on_start=progress.start,
                               progress=progress.advance)
    except KeyboardInterrupt:
        progress.close()
        print(f"interrupted: the finished studies are kept in {run}; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunMismatch as exc:
        return _usage(str(exc))
    except RadAssistError as exc:
        progress.close()
        return _usage(f"[{exc.code}] {exc.message}")
    progress.close()
    print(f"drafted {outcome.drafted}, without a draft {outcome.failed}, done before {outcome.done_before} "
          f"(model loaded in {outcome.model_load_s:.1f} s)", file=sys.stderr)
    return _report(run, settings)


def _report(run: Path, settings: Any) -> int:
    from radassist.evaluation.report import write_report

    try:
        json_path, html_path = write_report(run, settings.quality)
    except FileNotFoundError as exc:
        return _usage(str(exc))
    print(f"report: {html_path}\n        {json_path}")
    return 0


def _compare(target: list[str], args: argparse.Namespace, settings: Any) -> int:
    from radassist.evaluation.compare import as_text, compare_runs
    from radassist.evaluation.html import render_comparison
    from radassist.evaluation.results import write_json, write_text

    run_a, run_b = Path(target[1]), Path(target[2])
    try:
        comparison = compare_runs(run_a, run_b, settings.quality)
    except FileNotFoundError as exc:
        return _usage(str(exc))
    out = args.out or run_b / f"compare-with-{_slug(run_a.resolve().name)}"
    write_json(out / "compare.json", comparison.to_dict())
    write_text(out / "compare.html", render_comparison(comparison))
    print(as_text(comparison))
    print(f"\ncomparison: {out / 'compare.html'}")
    return 0
