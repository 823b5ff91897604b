"""Evaluation benchmark: what measuring drafts against finals costs.

Run: ``.venv/bin/python bench/eval.py [--pairs 400] [--seed 0] [--studies 40] [--batch-size 4]``

What it prints, and why:

* **metrics per pair**: ``compare_pair`` (text metrics + rule labeler over draft and final +
  agreement, critical flags, laterality) on generated chest-film draft/final pairs of report length,
  mean / p50 / p95 / max over ``--pairs`` pairs after one warm-up pair, against the issue's target of
  50 ms per pair.  The warm-up (building the spaCy pipeline and the metric scorers, once per process)
  is printed apart.  The split into text metrics and labelling says where the time goes.  A
  second run with reports four times as long stands for CT and MR reports.
* **bootstrap**: one 95 % interval (``[quality] bootstrap_samples`` resamples) of micro F1 and of
  ROUGE-L over all the pairs, and a paired difference: what a Quality page or ``eval compare`` adds.
* **Quality page figures**: the nine headline figures with their bootstrap intervals over all the
  pairs (what one page view computes for its window), the cost that grows with the pairs shown.
* **radassist eval, studies per minute**: ``--studies`` generated chest films drafted by the tiny
  scripted model on CPU through ``radassist eval``'s runner (the drafting stage's own functions) and
  measured: studies per minute with the model load apart, the split into prepare / draft / measure,
  and the whole command (process start, imports, model load, drafting, report) timed from outside.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radassist.config.quality import QualitySettings  # noqa: E402
from radassist.quality import PairTable, bootstrap_interval, paired_difference, scorer_for  # noqa: E402
from radassist.quality.labeler import RuleLabeler  # noqa: E402
from radassist.quality.normalise import report_body  # noqa: E402
from radassist.quality.text_metrics import text_metrics  # noqa: E402
from radassist.quality.vocabulary import vocabulary_for  # noqa: E402

TARGET_MS = 50.0

SIDES = ("left", "right", "bilateral")
FINDINGS = (
    "{side} pleural effusion", "{side} lower lobe consolidation", "{side} apical pneumothorax",
    "mild cardiomegaly", "{side} basilar atelectasis", "mild pulmonary edema", "a {side} upper lobe nodule",
    "patchy {side} airspace opacity", "{side} rib fractures", "{side} pleural thickening",
)
NEGATIVES = (
    "No pneumothorax.", "No pleural effusion.", "No focal consolidation.", "Heart size is normal.",
    "The cardiomediastinal silhouette is within normal limits.", "No acute osseous abnormality.",
    "No evidence of pulmonary edema.", "No free air under the diaphragm.",
    "The lungs are well expanded and otherwise clear without focal airspace opacity.",
    "The hilar contours are unremarkable and the pulmonary vasculature is not engorged.",
    "Visualized upper abdomen is unremarkable.", "Degenerative changes of the thoracic spine are noted.",
)
HEDGES = ("", "Possible ", "Probable ", "Small ", "Moderate ", "Large ")
DEVICES = (
    "Endotracheal tube terminates 4 cm above the carina.", "Right internal jugular central venous catheter in the SVC.",
    "Nasogastric tube courses below the diaphragm.", "Left chest tube in place.",
)


def report(rng: random.Random) -> str:
    """A chest-film report of typical length: devices, positive findings, pertinent negatives, impression."""
    positives = [
        (rng.choice(HEDGES) + rng.choice(FINDINGS).format(side=rng.choice(SIDES))).strip().capitalize() + "."
        for _ in range(rng.randint(0, 4))
    ]
    devices = rng.sample(DEVICES, rng.randint(0, 2))
    negatives = rng.sample(NEGATIVES, rng.randint(3, 8))
    findings = " ".join(devices + positives + negatives)
    impression = " ".join(positives[:2]) or "No acute cardiopulmonary process."
    return f"FINDINGS: {findings}\nIMPRESSION: {impression}"


def edited(text: str, rng: random.Random) -> str:
    """What a radiologist might sign: sentences dropped, swapped sides, a finding added."""
    sentences = [s for s in text.replace("\n", " \n ").split(". ") if s]
    out = [s for s in sentences if rng.random() > 0.15]
    if rng.random() < 0.3:
        out = [s.replace("left", "right") if rng.random() < 0.5 else s for s in out]
    if rng.random() < 0.4:
        out.insert(1, rng.choice(FINDINGS).format(side=rng.choice(SIDES)).capitalize())
    return ". ".join(out)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_pairs(pairs: int, seed: int, sections: int = 1) -> list[object]:
    """Time ``pairs`` pairs; ``sections`` > 1 makes each report that many reports long (CT-length text)."""
    rng = random.Random(seed)
    data = []
    for _ in range(pairs):
        draft = "\n".join(report(rng) for _ in range(sections))
        data.append((draft, edited(draft, rng)))
    settings = QualitySettings()
    start = time.perf_counter()
    scorer = scorer_for(settings)
    scorer.compare(*data[0], "cxr")
    warm_ms = (time.perf_counter() - start) * 1000
    times, results = [], []
    for draft, final in data:
        t0 = time.perf_counter()
        results.append(scorer.compare(draft, final, "cxr"))
        times.append((time.perf_counter() - t0) * 1000)
    labeler = RuleLabeler(vocabulary_for("cxr", settings))
    text_ms, label_ms = [], []
    for draft, final in data:
        t0 = time.perf_counter()
        text_metrics(draft, final)
        t1 = time.perf_counter()
        labeler.label(report_body(draft))
        labeler.label(report_body(final))
        t2 = time.perf_counter()
        text_ms.append((t1 - t0) * 1000)
        label_ms.append((t2 - t1) * 1000)
    words = statistics.mean(len(d.split()) + len(f.split()) for d, f in data) / 2
    mean, p95 = statistics.mean(times), percentile(times, 0.95)
    print(f"metrics per pair ({pairs} pairs, {words:.0f} words per report on average; warm-up {warm_ms:.0f} ms once):")
    print(f"  mean {mean:.2f} ms   p50 {percentile(times, 0.5):.2f} ms   p95 {p95:.2f} ms   max {max(times):.2f} ms")
    print(f"  of which text metrics {statistics.mean(text_ms):.2f} ms, labelling draft+final {statistics.mean(label_ms):.2f} ms")
    print(f"  target {TARGET_MS:.0f} ms: mean is {mean / TARGET_MS:.3f} x target, p95 {p95 / TARGET_MS:.3f} x target")
    return results


def bench_bootstrap(results: list[object]) -> None:
    settings = QualitySettings()
    table = PairTable.from_pairs(results)  # type: ignore[arg-type]
    half = len(table) // 2
    first, second = PairTable.from_pairs(table.pairs[:half]), PairTable.from_pairs(table.pairs[half : 2 * half])
    for metric in ("finding_f1_micro", "rouge_l"):
        t0 = time.perf_counter()
        interval = bootstrap_interval(table, metric, samples=settings.bootstrap_samples)
        ms = (time.perf_counter() - t0) * 1000
        print(
            f"bootstrap {metric}: {interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}] "
            f"({interval.samples} resamples of {interval.pairs} pairs) in {ms:.0f} ms"
        )
    t0 = time.perf_counter()
    diff = paired_difference(first, second, "finding_f1_micro", samples=settings.bootstrap_samples)
    ms = (time.perf_counter() - t0) * 1000
    print(f"paired difference finding_f1_micro ({diff.pairs} pairs): {diff.estimate:+.3f} "
          f"[{diff.low:+.3f}, {diff.high:+.3f}] in {ms:.0f} ms")


def bench_page_figures(results: list[object]) -> None:
    from radassist.quality.figures import FIGURES, estimate

    settings = QualitySettings()
    table = PairTable.from_pairs(results)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for metric, _ in FIGURES:
        estimate(table, metric, settings)
    ms = (time.perf_counter() - t0) * 1000
    print(f"Quality page figures: {len(FIGURES)} figures with {settings.bootstrap_samples}-resample intervals "
          f"over {len(table)} pairs in {ms:.0f} ms")


def bench_eval_run(studies: int, batch_size: int) -> None:
    """Studies per minute of ``radassist eval`` on CPU with the tiny scripted model."""
    from radassist.config import load_settings
    from radassist.evaluation.dataset import load_dataset
    from radassist.evaluation.report import build_report
    from radassist.evaluation.run import run_eval
    from radassist_devtools.tiny_models import write_tiny_model
    from tests.evaluation.factories import SCRIPTED, make_dataset, write_config

    with tempfile.TemporaryDirectory(prefix="radassist-bench-eval-") as folder:
        root = Path(folder)
        make_dataset(root / "dataset", studies)
        model = write_tiny_model(root / "model", arch="gemma3", report=SCRIPTED)
        config = write_config(root / "eval.toml", model=model, data=root / "data", batch_size=batch_size)
        settings = load_settings(config, environ={})
        dataset = load_dataset(root / "dataset")
        t0 = time.perf_counter()
        outcome = run_eval(dataset, settings, root / "run")
        wall = time.perf_counter() - t0 - outcome.model_load_s
        report = build_report(root / "run", settings.quality)
        steps = {t.step: t.mean_s * 1000 for t in report.timings}
        print(f"radassist eval, tiny model on CPU, {studies} chest films, batch size {batch_size}:")
        print(f"  {studies / wall * 60:.0f} studies per minute ({wall:.2f} s after a model load of "
              f"{outcome.model_load_s:.2f} s); per study: prepare {steps['prepare']:.1f} ms, draft "
              f"{steps['draft']:.1f} ms, measure {steps['measure']:.1f} ms")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")} | {"HF_HUB_OFFLINE": "1"}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "radassist", "eval", str(root / "dataset"), "--config", str(config),
                        "--run", str(root / "cli-run"), "--no-progress"], env=env, check=True,
                       capture_output=True, cwd=root)
        whole = time.perf_counter() - t0
        print(f"  the whole command (start, imports, model load, {studies} studies, report): {whole:.1f} s, "
              f"{studies / whole * 60:.0f} studies per minute")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--studies", type=int, default=40, help="studies of the radassist eval run")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    results = bench_pairs(args.pairs, args.seed)
    bench_pairs(max(20, args.pairs // 4), args.seed + 1, sections=4)
    bench_bootstrap(results)
    bench_page_figures(results)
    bench_eval_run(args.studies, args.batch_size)


if __name__ == "__main__":
    main()
