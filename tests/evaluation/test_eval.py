"""``radassist eval`` on a generated set of 20 chest films with a scripted tiny model and known
references: run through the real CLI, interrupted (``--limit``) and resumed, its HTML report opened
in Chromium (screenshot kept in tests/artifacts/), and two runs compared.

The tiny model writes the same normal report for every study, so the expected figures follow from
the references alone: 10 of 20 references are normal, 5 name a pneumothorax, 5 a right effusion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from radassist.evaluation.results import load_results
from tests.conftest import REPO
from tests.evaluation.factories import REFERENCES, SCRIPTED, make_dataset, write_config

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
SHADOW_SCRIPT = "Findings: Small left apical pneumothorax. No pleural effusion. Impression: Left pneumothorax."


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from radassist_devtools.tiny_models import write_tiny_model

    root = tmp_path_factory.mktemp("eval-models")
    return {"a": write_tiny_model(root / "normal", arch="gemma3", report=SCRIPTED),
            "b": write_tiny_model(root / "pneumothorax", arch="gemma3", report=SHADOW_SCRIPT)}


def radassist_eval(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-m", "radassist", "eval", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_eval_drafts_twenty_studies_resumes_and_writes_its_report(tmp_path: Path, models: dict[str, Path]) -> None:
    studies = make_dataset(tmp_path / "dataset", 20)
    config = write_config(tmp_path / "eval.toml", model=models["a"], data=tmp_path / "data")
    run = tmp_path / "run-a"

    first = radassist_eval(tmp_path / "dataset", "--config", config, "--run", run, "--limit", "7", "--no-progress",
                           cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    kept = {p.name: p.stat().st_mtime_ns for p in (run / "studies").glob("*.json")}
    assert len(kept) == 7

    second = radassist_eval(tmp_path / "dataset", "--config", config, "--run", run, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "done before 7" in second.stderr and "drafted 13" in second.stderr
    assert "study/s" in second.stderr or "s/study" in second.stderr  # tqdm's rate
    results = {r.study_instance_uid: r for r in load_results(run)}
    assert len(results) == 20
    assert {p.name: p.stat().st_mtime_ns for p in (run / "studies").glob("*.json") if p.name in kept} == kept
    for study in studies:
        result = results[study.study_instance_uid]
        assert result.measured and result.profile == "cxr" and result.reference == study.reference
        assert result.patient_sex == study.sex and result.age_band is not None
        pair = result.pair()
        expected_miss = study.reference == REFERENCES[1]
        assert pair.critical_misses == (("Pneumothorax",) if expected_miss else ())
        assert result.timings.draft_s > 0 and result.timings.measure_s > 0

    report = json.loads((run / "report.json").read_text())
    overall = {e["metric"]: e for e in report["overall"]}
    assert report["studies"] == report["measured"] == 20 and report["failures"] == {}
    assert overall["finding_f1_micro"]["value"] == pytest.approx(0.5)  # TP 10, FP 10, FN 10
    assert overall["critical_miss_rate"]["value"] == pytest.approx(0.25)
    assert overall["critical_miss_rate"]["low"] < 0.25 < overall["critical_miss_rate"]["high"]
    sexes = {g["value"]: g for g in report["fairness"] if g["slice"] == "patient_sex"}
    assert {v: g["studies"] for v, g in sexes.items()} == {"F": 10, "M": 10}
    assert all(f["low"] is not None for g in sexes.values() for f in g["figures"])
    assert report["studies_per_minute"] > 0 and {t["step"] for t in report["timings"]} == {
        "prepare", "draft", "measure", "total"}
    assert len(report["best"]) == 5 and len(report["worst"]) == 5
    assert report["worst"][0]["critical_misses"] == ["Pneumothorax"]
    _open_in_chromium(run / "report.html")

    # A third run of the same command has nothing left to draft and writes the same figures again.
    third = radassist_eval(tmp_path / "dataset", "--config", config, "--run", run, "--no-progress", cwd=tmp_path)
    assert third.returncode == 0 and "done before 20" in third.stderr, third.stderr

    # Another model on the same studies, then the two runs side by side.
    run_b = tmp_path / "run-b"
    other = radassist_eval(tmp_path / "dataset", "--config", config, "--model", models["b"], "--run", run_b,
                           "--no-progress", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    refused = radassist_eval(tmp_path / "dataset", "--config", config, "--run", run, "--model", models["b"],
                             cwd=tmp_path)
    assert refused.returncode == 2 and "another model" in refused.stderr  # a run never mixes two models
    compared = radassist_eval("compare", run, run_b, "--config", config, cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "20 studies in both runs" in compared.stdout
    comparison = json.loads((run_b / "compare-with-run-a" / "compare.json").read_text())
    diffs = {d["metric"]: d for d in comparison["differences"]}
    # B writes the pneumothorax report: it never misses one (5 misses fewer), but calls it on 15 others.
    assert diffs["critical_miss_rate"]["difference"] == pytest.approx(-0.25)
    assert diffs["critical_miss_rate"]["high"] < 0  # the interval excludes 0
    assert diffs["finding_f1_micro"]["difference"] == pytest.approx(0.25 - 0.5)
    html = (run_b / "compare-with-run-a" / "compare.html").read_text()
    critical = html.split("Critical miss rate", 1)[1].split("</tr>", 1)[0]
    assert "B better" in critical


def _open_in_chromium(report: Path) -> None:
    """The report renders offline: every resource inline, nothing requested; a screenshot is kept."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    requested: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(report.as_uri())
            sync_api.expect(page.locator("h1")).to_have_text("RadAssist evaluation report")
            sync_api.expect(page.locator(".card").first).to_contain_text("20 / 20")
            assert page.locator("svg").count() >= 6  # distributions, fairness, findings, timings
            assert page.locator("text=Fairness: by sex and age band").count() == 1
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "eval-report.png"), full_page=False)
        finally:
            browser.close()
    assert requested == [report.as_uri()]
