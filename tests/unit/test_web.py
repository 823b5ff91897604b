"""The worklist app on a real database (SQLite and PostgreSQL): states, timings, failure reasons,
pages, the draft notice, the ops endpoints and the database-derived metrics."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Delivery, Draft, Event, Job, Study
from radassist.events import EventTag
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
from radassist.web.app import create_app, format_seconds
from tests.web.support import add_user, bearer

T0 = dt.datetime(2025, 1, 1, 8, 0, 0, tzinfo=dt.UTC)
FINDINGS = "No focal consolidation. Heart size normal."
IMPRESSION = "No acute cardiopulmonary abnormality."


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@dataclass
class Seeded:
    receiving: uuid.UUID
    queued: uuid.UUID
    done: uuid.UUID
    failed: uuid.UUID
    failed_delivery: uuid.UUID
    reopened: uuid.UUID
    reopened_in_progress: uuid.UUID


def _study(n: int, state: StudyState, last_s: float, completed_s: float | None = None) -> Study:
    return Study(
        id=uuid.uuid4(),
        study_instance_uid=f"1.2.826.0.1.3680043.8.498.{n}",
        modality="CR",
        study_description=f"CHEST PA {n}",
        calling_ae_title="MODALITY1",
        called_ae_title="RADASSIST",
        state=state,
        instance_count=3,
        first_received_at=at(last_s - 20),
        last_received_at=at(last_s),
        completed_at=at(completed_s) if completed_s is not None else None,
    )


def _seed(settings: Settings) -> Seeded:
    sessions = make_sessionmaker(settings)
    try:
        with sessions.begin() as s:
            receiving = _study(1, StudyState.RECEIVING, last_s=700)

            queued = _study(2, StudyState.COMPLETE, last_s=600, completed_s=610)
            s.add_all([receiving, queued])
            s.flush()
            s.add(Job(study_id=queued.id, state=JobState.QUEUED, model_name="m", created_at=at(610)))

            done = _study(3, StudyState.COMPLETE, last_s=30, completed_s=40)
            s.add(done)
            s.flush()
            done_job = Job(
                study_id=done.id,
                state=JobState.DONE,
                model_name="google/medgemma-1.5-4b-it",
                attempts=1,
                created_at=at(40),
                started_at=at(45),
                drafted_at=at(105),
                finished_at=at(107.5),
            )
            s.add(done_job)
            s.flush()
            s.add(
                Draft(
                    job_id=done_job.id,
                    findings=FINDINGS,
                    impression=IMPRESSION,
                    raw_text=f"FINDINGS: {FINDINGS}\nIMPRESSION: {IMPRESSION}",
                    model_name="google/medgemma-1.5-4b-it",
                    prompt="Describe the radiograph.",
                    prompt_version="cxr-v1",
                    created_at=at(105),
                )
            )
            s.add_all(
                [
                    Delivery(
                        job_id=done_job.id,
                        channel=DeliveryChannel.SR,
                        destination="pacs",
                        state=DeliveryState.DELIVERED,
                        attempts=2,
                        last_error_code="pacs.unreachable",
                        delivered_at=at(107),
                    ),
                    Delivery(
                        job_id=done_job.id,
                        channel=DeliveryChannel.HL7,
                        destination="ris",
                        state=DeliveryState.DELIVERED,
                        attempts=1,
                        delivered_at=at(107.5),
                    ),
                ]
            )
            for i in range(3):
                s.add(Event(tag=EventTag.INSTANCE_RECEIVED, study_id=done.id, at=at(10 + 10 * i), detail={}))
            s.add(Event(tag=EventTag.STUDY_COMPLETE, study_id=done.id, at=at(40), detail={"instances": 3}))
            for tag, t in [
                (EventTag.JOB_QUEUED, 40),
                (EventTag.DRAFT_STARTED, 45),
                (EventTag.DRAFT_COMPLETED, 105),
                (EventTag.DELIVERY_SENT, 107),
                (EventTag.JOB_DONE, 107.5),
            ]:
                s.add(Event(tag=tag, study_id=done.id, job_id=done_job.id, at=at(t), detail={}))

            failed = _study(4, StudyState.COMPLETE, last_s=400, completed_s=410)
            failed_delivery = _study(5, StudyState.COMPLETE, last_s=300, completed_s=310)
            s.add_all([failed, failed_delivery])
            s.flush()
            s.add(
                Job(
                    study_id=failed.id,
                    state=JobState.FAILED,
                    model_name="m",
                    created_at=at(410),
                    started_at=at(411),
                    finished_at=at(412),
                    error_code="model.unavailable",
                    error_message="the model weights are not in the local cache",
                )
            )
            fd_job = Job(
                study_id=failed_delivery.id, state=JobState.FAILED, model_name="m", created_at=at(310)
            )
            s.add(fd_job)
            s.flush()
            s.add(
                Delivery(
                    job_id=fd_job.id,
                    channel=DeliveryChannel.HL7,
                    destination="ris",
                    state=DeliveryState.FAILED,
                    attempts=1,
                    last_error_code="hl7.nack.ar",
                    last_error_message="the RIS rejected the message",
                )
            )

            # Reopened: an earlier job finished, then a late instance arrived.
            reopened = _study(6, StudyState.RECEIVING, last_s=200, completed_s=150)
            # Reopened while a newer job is still queued: the job's state wins.
            reopened_in_progress = _study(7, StudyState.RECEIVING, last_s=100, completed_s=90)
            s.add_all([reopened, reopened_in_progress])
            s.flush()
            s.add_all(
                [
                    Job(study_id=reopened.id, state=JobState.DONE, model_name="m", created_at=at(150)),
                    Job(
                        study_id=reopened_in_progress.id,
                        state=JobState.FAILED,
                        model_name="m",
                        created_at=at(80),
                    ),
                    Job(
                        study_id=reopened_in_progress.id,
                        state=JobState.QUEUED,
                        model_name="m",
                        created_at=at(95),
                    ),
                ]
            )
            ids = Seeded(
                receiving=receiving.id,
                queued=queued.id,
                done=done.id,
                failed=failed.id,
                failed_delivery=failed_delivery.id,
                reopened=reopened.id,
                reopened_in_progress=reopened_in_progress.id,
            )
    finally:
        sessions.kw["bind"].dispose()
    return ids


@pytest.fixture
def seeded(migrated_settings: Settings) -> Seeded:
    return _seed(migrated_settings)


@pytest.fixture
def client(migrated_settings: Settings) -> Iterator[TestClient]:
    """A client authenticated as an admin by API token (the auth itself is tested in tests/web)."""
    token = add_user(migrated_settings, "admin", "admin")
    with TestClient(create_app(migrated_settings), headers=bearer(token)) as c:
        yield c


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_api_states_durations_and_failure_reasons(seeded: Seeded, client: TestClient) -> None:
    response = client.get("/api/studies", params={"limit": 100})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 7
    rows = _by_id(body["items"])
    states = {k: rows[str(v)]["state"] for k, v in vars(seeded).items()}
    assert states == {
        "receiving": "receiving",
        "queued": "queued",
        "done": "done",
        "failed": "failed",
        "failed_delivery": "failed",
        "reopened": "receiving",
        "reopened_in_progress": "queued",
    }
    # Most recently received first.
    assert [item["id"] for item in body["items"]][:2] == [str(seeded.receiving), str(seeded.queued)]

    done = rows[str(seeded.done)]
    assert done["waiting_s"] == pytest.approx(10)
    assert done["queued_s"] == pytest.approx(5)
    assert done["drafting_s"] == pytest.approx(60)
    assert done["delivering_s"] == pytest.approx(2.5)
    assert done["total_s"] == pytest.approx(97.5)
    assert done["has_draft"] is True
    assert done["error_code"] is None
    assert done["first_received_at"] == "2025-01-01T08:00:10Z"
    assert done["job_finished_at"] == "2025-01-01T08:01:47.500000Z"
    deliveries = {(d["channel"], d["destination"]): d for d in done["deliveries"]}
    assert set(deliveries) == {("sr", "pacs"), ("hl7", "ris")}
    assert deliveries[("sr", "pacs")]["state"] == "delivered"
    assert deliveries[("sr", "pacs")]["attempts"] == 2

    failed = rows[str(seeded.failed)]
    assert failed["error_code"] == "model.unavailable"
    assert "local cache" in failed["error_message"]
    assert failed["has_draft"] is False
    assert failed["drafting_s"] is None

    failed_delivery = rows[str(seeded.failed_delivery)]
    assert failed_delivery["error_code"] == "hl7.nack.ar"
    assert failed_delivery["error_message"] == "hl7 to ris: the RIS rejected the message"

    receiving = rows[str(seeded.receiving)]
    assert receiving["job_id"] is None and receiving["deliveries"] == []
    assert receiving["receiving_s"] == pytest.approx(20)
    # The reopened study's old completion does not count as a wait.
    assert rows[str(seeded.reopened)]["waiting_s"] is None
    assert rows[str(seeded.reopened)]["job_state"] == "done"


def test_api_filter_and_pagination(seeded: Seeded, client: TestClient) -> None:
    first = client.get("/api/studies", params={"limit": 3, "offset": 0}).json()
    second = client.get("/api/studies", params={"limit": 3, "offset": 3}).json()
    third = client.get("/api/studies", params={"limit": 3, "offset": 6}).json()
    assert first["total"] == second["total"] == third["total"] == 7
    assert [len(p["items"]) for p in (first, second, third)] == [3, 3, 1]
    ids = [item["id"] for page in (first, second, third) for item in page["items"]]
    assert len(set(ids)) == 7

    receiving = client.get("/api/studies", params={"state": "receiving"}).json()
    assert receiving["total"] == 2
    assert {item["id"] for item in receiving["items"]} == {str(seeded.receiving), str(seeded.reopened)}
    failed = client.get("/api/studies", params={"state": "failed", "limit": 1}).json()
    assert failed["total"] == 2 and len(failed["items"]) == 1
    assert client.get("/api/studies", params={"state": "nonsense"}).status_code == 422
    assert client.get("/api/studies", params={"limit": 0}).status_code == 422


def test_api_detail_timeline_draft_and_404(seeded: Seeded, client: TestClient) -> None:
    detail = client.get(f"/api/studies/{seeded.done}").json()
    assert detail["state"] == "done"
    assert detail["draft"]["findings"] == FINDINGS
    assert detail["draft"]["impression"] == IMPRESSION
    assert detail["draft"]["prompt_version"] == "cxr-v1"
    assert detail["draft"]["verified"] is False
    tags = [e["tag"] for e in detail["events"]]
    assert tags == [
        "study:instance:received",
        "study:complete",
        "job:queued",
        "job:draft:started",
        "job:draft:completed",
        "delivery:sent",
        "job:done",
    ]
    folded = detail["events"][0]
    assert folded["count"] == 3
    assert folded["at"] == "2025-01-01T08:00:10Z" and folded["last_at"] == "2025-01-01T08:00:30Z"
    assert detail["events"][1]["detail"] == {"instances": 3}

    history = client.get(f"/api/studies/{seeded.reopened_in_progress}").json()
    assert [j["state"] for j in history["jobs"]] == ["queued", "failed"]
    assert history["draft"] is None

    assert client.get(f"/api/studies/{uuid.uuid4()}").status_code == 404
    assert client.get(f"/studies/{uuid.uuid4()}").status_code == 404


def test_html_worklist_and_study_page(seeded: Seeded, client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<meta http-equiv="refresh" content="10">' in html
    for state in ("receiving", "queued", "done", "failed"):
        assert f'<span class="badge state-{state}">{state}</span>' in html
    assert "model.unavailable" in html and "the model weights are not in the local cache" in html
    assert "hl7.nack.ar" in html
    assert f'href="/studies/{seeded.done}"' in html

    filtered = client.get("/", params={"state": "failed"}).text
    assert "model.unavailable" in filtered
    assert f'href="/studies/{seeded.receiving}"' not in filtered

    study = client.get(f"/studies/{seeded.done}")
    assert study.status_code == 200
    assert "AI DRAFT — NOT VERIFIED" in study.text
    assert FINDINGS in study.text and IMPRESSION in study.text
    assert "delivery:sent" in study.text and "1 min 00 s" in study.text

    no_draft = client.get(f"/studies/{seeded.failed}").text
    assert "AI DRAFT" not in no_draft
    assert "model.unavailable" in no_draft


def test_worklist_page_costs_a_fixed_number_of_queries(seeded: Seeded, client: TestClient) -> None:
    engine: Engine = client.app.state.sessionmaker.kw["bind"]  # type: ignore[attr-defined]
    assert client.get("/readyz").status_code == 200  # first connect (dialect set-up) out of the count
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get("/api/studies", params={"limit": 100}).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # The API token's user, the rows, the page's deliveries, the total: independent of the number of studies.
    assert len(statements) == 4


def test_ops_endpoints_and_metrics(seeded: Seeded, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert "radassist_db_up 1.0" in text
    assert 'radassist_studies{state="done"} 1.0' in text
    assert 'radassist_studies{state="receiving"} 2.0' in text
    assert 'radassist_studies{state="queued"} 2.0' in text
    assert 'radassist_studies{state="failed"} 2.0' in text
    assert 'radassist_studies{state="drafting"} 0.0' in text
    assert 'radassist_jobs{state="failed"} 3.0' in text
    assert 'radassist_deliveries{channel="sr",state="delivered"} 1.0' in text
    assert 'radassist_deliveries{channel="hl7",state="failed"} 1.0' in text
    assert 'radassist_failures{code="model.unavailable",source="job"} 1.0' in text
    assert 'radassist_failures{code="hl7.nack.ar",source="delivery"} 1.0' in text
    assert "radassist_instances_received_total" in text
    # No identifier ever becomes a label value.
    assert "1.2.826.0.1.3680043.8.498" not in text and "MODALITY1" not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readyz_and_metrics_when_database_is_down(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/none",
                             web_metrics_public="true")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["code"] == "database.unreachable"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "radassist_db_up 0.0" in metrics.text


def test_empty_worklist(client: TestClient) -> None:
    assert client.get("/api/studies").json() == {"items": [], "total": 0, "total_capped": False, "limit": 50,
                                                 "offset": 0}
    assert "No studies" in client.get("/").text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, ""), (0.25, "250 ms"), (12.34, "12.3 s"), (245, "4 min 05 s"), (7380, "2 h 03 min")],
)
def test_format_seconds(seconds: float | None, shown: str) -> None:
    assert format_seconds(seconds) == shown


def test_state_filtered_total_can_stop_counting(seeded: Seeded, migrated_settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch, client: TestClient) -> None:
    from radassist.read import worklist as queries
    from radassist.web.routes import worklist

    sessions = make_sessionmaker(migrated_settings)
    with sessions() as s:
        assert queries.count_studies(s, state="receiving") == 2
        assert queries.count_studies(s, state="receiving", cap=1) == 2  # cap + 1: "more than one"
        assert queries.count_studies(s, state="receiving", cap=5) == 2
    sessions.kw["bind"].dispose()
    monkeypatch.setattr(worklist, "TOTAL_CAP", 1)
    body = client.get("/api/studies", params={"state": "receiving"}).json()
    assert (body["total"], body["total_capped"], len(body["items"])) == (1, True, 2)
    assert client.get("/api/studies").json()["total_capped"] is False  # the unfiltered total is exact
