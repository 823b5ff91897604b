"""The Quality page, its JSON and CSV, the quality gauges on /metrics and drift on the System page,
over pairs measured by the real measurement (one live model and one shadow model on the same studies,
two weeks of drafts, verdicts).  Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import DraftVerdict, Report, Study, Verdict
from radassist.measuring.record import measure_draft
from radassist.quality import compare_pair
from radassist.web.app import create_app
from tests.quality.live import (
    MISSED_PNEUMOTHORAX,
    NORMAL_FINDINGS,
    NORMAL_IMPRESSION,
    Drafted,
    add_drafted_study,
)
from tests.web.support import add_user, bearer

NORMAL_FINAL = f"FINDINGS: {NORMAL_FINDINGS}\nIMPRESSION: {NORMAL_IMPRESSION}"
LEFT_EFFUSION = "FINDINGS: Small left pleural effusion.\nIMPRESSION: Left effusion."
RIGHT_EFFUSION = ("Small right pleural effusion.", "Right effusion.")
# (final report, live draft's findings and impression, sex, calling AE) per study; a study every day.
CASES = [
    (NORMAL_FINAL, (NORMAL_FINDINGS, NORMAL_IMPRESSION), "F", "MODALITY"),
    (MISSED_PNEUMOTHORAX, (NORMAL_FINDINGS, NORMAL_IMPRESSION), "M", "MODALITY"),
    (LEFT_EFFUSION, RIGHT_EFFUSION, "F", "=HYPERLINK"),
    (NORMAL_FINAL, (NORMAL_FINDINGS, NORMAL_IMPRESSION), "M", "MODALITY"),
    (MISSED_PNEUMOTHORAX, (NORMAL_FINDINGS, NORMAL_IMPRESSION), "F", "MODALITY"),
    (LEFT_EFFUSION, ("Small left pleural effusion.", "Left effusion."), "F", "MODALITY"),
    (NORMAL_FINAL, (NORMAL_FINDINGS, NORMAL_IMPRESSION), "F", "MODALITY"),
    (MISSED_PNEUMOTHORAX, ("Small left apical pneumothorax.", "Left pneumothorax."), "M", "MODALITY"),
    (NORMAL_FINAL, RIGHT_EFFUSION, "M", "MODALITY"),
    (LEFT_EFFUSION, (NORMAL_FINDINGS, NORMAL_IMPRESSION), "F", "MODALITY"),
]
SHADOWED = range(0, 10, 2)
"""Studies the shadow model also drafted: it writes the final's words exactly."""
VERDICTS = [Verdict.USEFUL_AS_IS] * 3 + [Verdict.USEFUL_WITH_EDITS] * 2 + [Verdict.NOT_USEFUL]


@dataclass
class Seeded:
    live: list[Drafted]
    shadow: list[Drafted]


def _measure(session: Session, settings: Settings, drafted: Drafted) -> None:
    def compare(draft: str, final: str, profile: str):  # type: ignore[no-untyped-def]
        return compare_pair(draft, final, profile, settings.quality)

    assert measure_draft(session, drafted.draft_id, settings.quality, compare, utcnow()) is not None
    session.commit()


def seed(session: Session, settings: Settings, rounds: int = 1) -> Seeded:
    """The ten cases drafted a day apart (``rounds`` times over, ten days further back each time),
    each with its final, shadow drafts of every other study, all measured; verdicts on the first six."""
    now = utcnow()
    live, shadow = [], []
    for turn in range(rounds):
        for n, (final, (findings, impression), sex, ae) in enumerate(CASES):
            at = now - dt.timedelta(days=n + 1 + 10 * turn, hours=1)
            drafted = add_drafted_study(session, f"ACC-PAGE-{turn}-{n}", findings=findings, impression=impression,
                                        drafted_at=at, sex=sex, age=f"{30 + 7 * n:03d}Y" if turn else "064Y")
            study = session.get(Study, drafted.study_id)
            assert study is not None
            study.calling_ae_title = ae
            session.add(Report(accession_number_hash=study.accession_number_hash, study_id=study.id, status="F",
                               text=final, control_id=f"ORU-{turn}-{n}", received_at=at + dt.timedelta(minutes=30)))
            session.commit()
            live.append(drafted)
            if n in SHADOWED:
                body = final.replace("FINDINGS: ", "").split("\nIMPRESSION: ")
                shadow.append(add_drafted_study(session, drafted.accession, study=study, model_name="tiny-shadow",
                                                shadow=True, findings=body[0], impression=body[1], drafted_at=at))
    for drafted in [*live, *shadow]:
        _measure(session, settings, drafted)
    for drafted, verdict in zip(live, VERDICTS * rounds, strict=False):
        session.add(DraftVerdict(draft_id=drafted.draft_id, job_id=drafted.job_id, user_name="rad", verdict=verdict))
    session.commit()
    return Seeded(live, shadow)


@pytest.fixture
def drifting(migrated_settings: Settings) -> Settings:
    quality = migrated_settings.quality.model_copy(update={"drift_min_pairs": 3, "drift_threshold": 0.9,
                                                           "bootstrap_samples": 200})
    return migrated_settings.model_copy(update={"quality": quality})


@pytest.fixture
def seeded(drifting: Settings) -> Iterator[Seeded]:
    maker = make_sessionmaker(drifting)
    with maker() as session:
        yield seed(session, drifting)
    maker.kw["bind"].dispose()


@pytest.fixture
def client(drifting: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(drifting)) as c:
        yield c


def test_the_quality_page_shows_pairs_acceptance_findings_and_misses(
    client: TestClient, drifting: Settings, seeded: Seeded
) -> None:
    token = add_user(drifting, "viewer1", "viewer")
    page = client.get("/quality", headers=bearer(token))
    assert page.status_code == 200
    html = page.text
    assert re.search(r"Draft/final pairs</div><div class=\"value\">10<", html)
    assert "83.3 %" in html  # 5 of 6 verdicts accept the draft (3 as is, 2 with edits)
    missed = [seeded.live[n] for n in (1, 4)]  # the live drafts that said nothing of a pneumothorax
    for drafted in missed:
        assert f'href="/studies/{drafted.study_id}"' in html
    assert f'href="/studies/{seeded.live[7].study_id}"' not in html  # that draft had it
    assert html.count("<svg") == 2  # the weekly trend and the per-finding bars, inline
    # Nothing is fetched: no script, no stylesheet or image from elsewhere (plots are drawn on the server).
    assert "<script" not in html and "<link" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    assert "Shadow <code>tiny-shadow</code>" in html and "shadow better" in html

    api = client.get("/api/quality", headers=bearer(token)).json()
    assert api["pairs"] == 10 and api["not_measured"] == 0 and api["labelers"] == ["rule"]
    assert api["acceptance"] == {"verdicts": 6, "useful_as_is": 3, "useful_with_edits": 2, "not_useful": 1,
                                 "rate": pytest.approx(5 / 6), "as_is_rate": 0.5}
    figures = {f["metric"]: f for f in api["figures"]}
    assert figures["critical_miss_rate"]["value"] == pytest.approx(0.2)
    assert figures["laterality_swap_rate"]["value"] == pytest.approx(0.1)  # one left/right swap of ten
    assert figures["critical_miss_rate"]["low"] <= 0.2 <= figures["critical_miss_rate"]["high"]
    rows = {r["finding"]: r for r in api["per_finding"]}
    assert rows["Pneumothorax"]["false_negatives"] == 2 and rows["Pneumothorax"]["true_positives"] == 1
    assert rows["Pleural Effusion"]["true_positives"] == 2 and rows["Pleural Effusion"]["false_positives"] == 1
    assert sum(p["pairs"] for p in api["trend"]) == 10 and len(api["trend"]) >= 2
    assert [(m["model_name"], m["shadow"], m["pairs"]) for m in api["models"]] == [
        ("tiny-main", False, 10), ("tiny-shadow", True, 5)]
    (comparison,) = api["comparisons"]
    assert comparison["studies"] == 5 and comparison["live_models"] == ["tiny-main"]
    f1 = next(d for d in comparison["differences"] if d["metric"] == "finding_f1_micro")
    assert f1["shadow"] == 1.0 and f1["difference"] > 0
    assert api["options"]["patient_sex"] == ["F", "M"]


def test_slices_shadow_drafts_and_a_window(client: TestClient, drifting: Settings, seeded: Seeded) -> None:
    token = add_user(drifting, "viewer2", "viewer")

    def pairs(query: str) -> int:
        response = client.get(f"/api/quality?{query}", headers=bearer(token))
        assert response.status_code == 200, response.text
        return int(response.json()["pairs"])

    assert pairs("sex=M") == 4 and pairs("sex=F") == 6
    assert pairs("drafts=shadow") == 5 and pairs("drafts=all") == 15
    assert pairs("model=tiny-shadow") == 0  # live drafts only, by default
    assert pairs("days=3") == 2  # drafted 1 and 2 days ago
    assert pairs("age_band=60-79") == 10 and pairs("age_band=80%2B") == 0
    today = utcnow().date()
    assert pairs(f"from={today - dt.timedelta(days=5)}&to={today - dt.timedelta(days=4)}") == 2
    assert client.get("/api/quality?sex=X", headers=bearer(token)).status_code == 422
    assert pairs("to=0001-01-02&days=3660") == 0  # a window reaching before year 1 starts there
    assert pairs("from=&to=&sex=&model=") == 10  # the page's form sends its empty fields
    acceptance = client.get("/api/quality?sex=M", headers=bearer(token)).json()["acceptance"]
    assert acceptance["verdicts"] == 2  # the verdicts on the first six drafts given to studies of M patients (1, 3)


def test_csv_export_one_line_per_pair_formulas_defused(client: TestClient, drifting: Settings, seeded: Seeded) -> None:
    token = add_user(drifting, "viewer3", "viewer")
    response = client.get("/quality.csv", headers=bearer(token))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert len(lines) == 10
    assert {line["calling_ae_title"] for line in lines} == {"MODALITY", "'=HYPERLINK"}
    missed = [line for line in lines if line["critical_misses"]]
    assert {line["study_id"] for line in missed} == {str(seeded.live[n].study_id) for n in (1, 4)}
    swapped = [line for line in lines if line["laterality_swaps"]]
    assert [line["study_id"] for line in swapped] == [str(seeded.live[2].study_id)]
    assert sorted(line["verdicts"] for line in lines if line["verdicts"]) == sorted(v.value for v in VERDICTS)
    assert "SENTINEL" not in response.text and "ACC-PAGE" not in response.text


def test_drift_on_the_system_page_and_the_quality_gauges(
    client: TestClient, drifting: Settings, seeded: Seeded
) -> None:
    token = add_user(drifting, "viewer4", "viewer")
    system = client.get("/system", headers=bearer(token)).text
    assert "Draft quality drift" in system and "drift: past the threshold" in system
    drift = client.get("/api/quality/drift", headers=bearer(token)).json()
    live = next(d for d in drift if not d["shadow"])
    assert live["model_name"] == "tiny-main" and live["drifted"] is True and live["pairs"] == 6  # last 7 days
    shadow = next(d for d in drift if d["shadow"])
    assert shadow["drifted"] is False and shadow["figure"] == 1.0

    metrics = client.get("/metrics", headers=bearer(token)).text
    assert 'radassist_quality_drift{model="tiny-main",shadow="false"} 1.0' in metrics
    assert 'radassist_quality_drift{model="tiny-shadow",shadow="true"} 0.0' in metrics
    assert 'radassist_quality_pairs{model="tiny-main",shadow="false"} 6.0' in metrics
    assert 'radassist_quality_acceptance_rate{model="tiny-main",shadow="false"} 0.8333' in metrics
    assert 'radassist_quality_drift_threshold{metric="finding_f1_micro"} 0.9' in metrics


def test_a_large_view_is_remembered_for_a_minute_a_small_one_never(
    client: TestClient, drifting: Settings, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from radassist.db.tables import DraftMeasurement
    from radassist.web.routes import quality as routes

    token = add_user(drifting, "viewer5", "viewer")

    def pairs() -> int:
        return int(client.get("/api/quality", headers=bearer(token)).json()["pairs"])

    monkeypatch.setattr(routes, "CACHE_FROM_PAIRS", 5)  # ten pairs count as a large view here
    # The window ends at the next whole minute: held still, so that a slow run crossing a minute
    # does not ask another question (which would rightly be computed afresh).
    now = routes.utcnow()
    monkeypatch.setattr(routes, "utcnow", lambda: now)
    assert pairs() == 10
    maker = make_sessionmaker(drifting)
    with maker() as session:
        session.execute(update(DraftMeasurement).where(DraftMeasurement.draft_id == seeded.live[0].draft_id)
                        .values(current=False))
        session.commit()
    maker.kw["bind"].dispose()
    assert pairs() == 10  # the same window and slice within the minute: remembered
    monkeypatch.setattr(routes, "CACHE_FROM_PAIRS", 500)
    assert pairs() == 9  # a small view is computed afresh
