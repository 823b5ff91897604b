"""The admin's actions through the API (bearer token): state changes, the task sent to the broker,
the audit row; refusals when the target is in the wrong state.  Also the worklist's filters, the
study page's images, prompt and warnings, and the system page."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from radassist import actions
from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import AuditEntry, Delivery, Draft, Instance, Job, Series, Study
from radassist.identifiers import accession_hash
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
from radassist.web.app import create_app
from radassist.web.system import SystemProbe
from tests.web.support import add_user, bearer

ACCESSION = "ACC-77-SENTINEL"


@dataclass
class World:
    settings: Settings
    failed_delivery_study: uuid.UUID
    failed_delivery_job: uuid.UUID
    sr_delivery: uuid.UUID
    hl7_delivery: uuid.UUID
    failed_draft_job: uuid.UUID
    failed_draft_study: uuid.UUID
    running_job: uuid.UUID
    receiving_study: uuid.UUID
    sop_uid: str


def _study(n: int, state: StudyState, received: dt.datetime, **kw: object) -> Study:
    return Study(id=uuid.uuid4(), study_instance_uid=f"1.2.826.0.1.3680043.8.498.7{n}", modality=kw.pop("modality", "CR"),
                 study_description=f"CHEST {n}", calling_ae_title=kw.pop("ae", "MOD1"), called_ae_title="RADASSIST",
                 state=state, instance_count=1, first_received_at=received, last_received_at=received,
                 completed_at=received if state is StudyState.COMPLETE else None, **kw)


def _seed(settings: Settings, testdata: Path) -> World:
    source = testdata / "pydicom-data" / "RG1_J2KR.dcm"
    sop_uid = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    (settings.storage.instances_dir / "x").mkdir(parents=True, exist_ok=True)
    shutil.copy(source, settings.storage.instances_dir / "x" / "cr.dcm")
    now = utcnow()
    sessions = make_sessionmaker(settings)
    try:
        with sessions.begin() as s:
            a = _study(1, StudyState.COMPLETE, now - dt.timedelta(hours=2), accession_number_hash=accession_hash(ACCESSION),
                       patient_age="064Y", patient_sex="F")
            b = _study(2, StudyState.COMPLETE, now - dt.timedelta(days=3), modality="CT", ae="CTSCANNER")
            c = _study(3, StudyState.COMPLETE, now - dt.timedelta(minutes=5))
            d = _study(4, StudyState.RECEIVING, now - dt.timedelta(minutes=1))
            s.add_all([a, b, c, d])
            s.flush()
            series = Series(study_id=a.id, series_instance_uid="1.2.826.0.1.3680043.8.498.99", modality="CR",
                            series_number=1, instance_count=1)
            s.add(series)
            s.flush()
            s.add(Instance(series_id=series.id, study_id=a.id, sop_instance_uid=sop_uid,
                           sop_class_uid="1.2.840.10008.5.1.4.1.1.1", transfer_syntax_uid="1.2.840.10008.1.2.4.90",
                           path="x/cr.dcm", size_bytes=1))
            job_a = Job(study_id=a.id, state=JobState.FAILED, model_name="m", attempts=1, created_at=now,
                        started_at=now, drafted_at=now, finished_at=now, error_code="pacs.unreachable")
            job_b = Job(study_id=b.id, state=JobState.FAILED, model_name="m", attempts=1, created_at=now,
                        error_code="model.unavailable")
            job_c = Job(study_id=c.id, state=JobState.DELIVERING, model_name="m", created_at=now)
            s.add_all([job_a, job_b, job_c])
            s.flush()
            s.add(Draft(job_id=job_a.id, findings="Clear lungs.", impression="Normal.", raw_text="x", model_name="m",
                        prompt="Describe this chest radiograph.", prompt_version="v1",
                        generation={"source_sop_instance_uids": [sop_uid],
                                    "consistency_warnings": ["laterality: left in findings, right in impression"],
                                    "series_chosen": {"series_number": 3, "series_description": "AX 1.0 LUNG",
                                                      "modality": "CT", "slices_total": 300, "slices_shown": 8,
                                                      "enhanced": False}}))
            sr = Delivery(job_id=job_a.id, channel=DeliveryChannel.SR, destination="pacs", state=DeliveryState.FAILED,
                          attempts=5, last_error_code="pacs.unreachable", last_error_message="connection refused")
            hl7 = Delivery(job_id=job_a.id, channel=DeliveryChannel.HL7, destination="ris",
                           state=DeliveryState.DELIVERED, attempts=1)
            pending = Delivery(job_id=job_c.id, channel=DeliveryChannel.SR, destination="pacs")
            s.add_all([sr, hl7, pending])
            s.flush()
            return World(settings, a.id, job_a.id, sr.id, hl7.id, job_b.id, b.id, job_c.id, d.id, sop_uid)
    finally:
        sessions.kw["bind"].dispose()


@pytest.fixture
def world(migrated_settings: Settings, testdata: Path) -> World:
    return _seed(migrated_settings, testdata)


@pytest.fixture
def admin(world: World) -> Iterator[TestClient]:
    token = add_user(world.settings, "admin1", "admin")
    with TestClient(create_app(world.settings), headers=bearer(token)) as client:
        yield client


def _queued(settings: Settings) -> dict[str, int | None]:
    return SystemProbe(settings).status().queue_depths


def _read(settings: Settings, entity: type, key: uuid.UUID) -> object:
    sessions = make_sessionmaker(settings)
    try:
        with sessions() as s:
            row = s.get(entity, key)
            s.expunge_all()
            return row
    finally:
        sessions.kw["bind"].dispose()


def test_retry_failed_delivery_reopens_job_and_queues_one_message(world: World, admin: TestClient) -> None:
    before = _queued(world.settings)
    response = admin.post(f"/api/deliveries/{world.sr_delivery}/retry")
    assert response.status_code == 200 and response.json()["ok"] is True
    delivery = _read(world.settings, Delivery, world.sr_delivery)
    assert delivery.state is DeliveryState.PENDING and delivery.last_error_code is None  # type: ignore[attr-defined]
    job = _read(world.settings, Job, world.failed_delivery_job)
    assert job.state is JobState.DELIVERING and job.finished_at is None  # type: ignore[attr-defined]
    after = _queued(world.settings)
    assert after["io"] == (before["io"] or 0) + 1 and after["gpu"] == before["gpu"]
    # Again: it is pending now, so the action is refused and nothing more is queued.
    again = admin.post(f"/api/deliveries/{world.sr_delivery}/retry")
    assert again.status_code == 409 and "pending" in again.json()["message"]
    assert admin.post(f"/api/deliveries/{world.hl7_delivery}/retry").status_code == 409  # delivered
    audit = admin.get("/api/audit").json()
    assert [(a["action"], a["outcome"]) for a in audit][:3] == [
        ("retry_delivery", "refused"), ("retry_delivery", "refused"), ("retry_delivery", "done")]
    assert all(a["user_name"] == "admin1" for a in audit)
    assert _queued(world.settings)["io"] == after["io"]


def test_retry_job_redrafts_or_resends(world: World, admin: TestClient) -> None:
    before = _queued(world.settings)
    assert admin.post(f"/api/jobs/{world.failed_draft_job}/retry").status_code == 200
    job = _read(world.settings, Job, world.failed_draft_job)
    assert job.state is JobState.QUEUED and job.error_code is None  # type: ignore[attr-defined]
    # A job with a draft that failed in delivery: its failed deliveries go again, not the model.
    assert admin.post(f"/api/jobs/{world.failed_delivery_job}/retry").json()["message"] == "1 deliveries queued again"
    after = _queued(world.settings)
    # Drafting again starts with preparing its inputs (cpu queue); deliveries go to io.
    assert after["cpu"] == (before["cpu"] or 0) + 1 and after["io"] == (before["io"] or 0) + 1
    assert admin.post(f"/api/jobs/{world.running_job}/retry").status_code == 409
    assert admin.post(f"/api/jobs/{uuid.uuid4()}/retry").status_code == 409


def test_cancel_force_complete_redraft(world: World, admin: TestClient) -> None:
    assert admin.post(f"/api/jobs/{world.running_job}/cancel").status_code == 200
    job = _read(world.settings, Job, world.running_job)
    assert job.state is JobState.CANCELLED  # type: ignore[attr-defined]
    sessions = make_sessionmaker(world.settings)
    with sessions() as s:
        states = s.scalars(select(Delivery.state).where(Delivery.job_id == world.running_job)).all()
    assert states == [DeliveryState.CANCELLED]
    assert admin.post(f"/api/jobs/{world.running_job}/cancel").status_code == 409

    forced = admin.post(f"/api/studies/{world.receiving_study}/force-complete")
    assert forced.status_code == 200
    with sessions() as s:
        study = s.get(Study, world.receiving_study)
        assert study is not None and study.state is StudyState.COMPLETE
        jobs = s.scalars(select(Job).where(Job.study_id == world.receiving_study)).all()
        assert [j.state for j in jobs] == [JobState.QUEUED]
        assert jobs[0].model_name == world.settings.model.name
    assert admin.post(f"/api/studies/{world.receiving_study}/force-complete").status_code == 409
    assert admin.post(f"/api/studies/{world.receiving_study}/redraft").status_code == 409  # job in progress

    redraft = admin.post(f"/api/studies/{world.failed_draft_study}/redraft")
    assert redraft.status_code == 200
    with sessions() as s:
        jobs = s.scalars(select(Job).where(Job.study_id == world.failed_draft_study).order_by(Job.created_at)).all()
        assert [j.state for j in jobs] == [JobState.FAILED, JobState.QUEUED]
        assert jobs[1].supersedes_job_id == jobs[0].id
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.target == str(world.failed_draft_study))) == "redraft"
    sessions.kw["bind"].dispose()


def test_pause_and_resume_intake(world: World, admin: TestClient) -> None:
    sessions = make_sessionmaker(world.settings)
    assert admin.post("/api/intake/MOD1/pause").status_code == 200
    assert admin.post("/api/intake/MOD1/pause").status_code == 409
    with sessions() as s:
        assert actions.intake_paused(s, "MOD1") and not actions.intake_paused(s, "OTHER")
    assert "Intake paused for" in admin.get("/").text
    assert admin.post("/api/intake/MOD1/resume").status_code == 200
    assert admin.post("/api/intake/MOD1/resume").status_code == 409
    with sessions() as s:
        assert not actions.intake_paused(s, "MOD1")
    sessions.kw["bind"].dispose()


def test_worklist_filters(world: World, admin: TestClient) -> None:
    def ids(**params: str) -> set[str]:
        body = admin.get("/api/studies", params=params).json()
        assert body["total"] == len(body["items"])
        return {i["id"] for i in body["items"]}

    everything = ids()
    assert len(everything) == 4
    assert ids(modality="ct") == {str(world.failed_draft_study)}
    assert ids(ae="CTSCANNER") == {str(world.failed_draft_study)}
    assert ids(accession=ACCESSION) == {str(world.failed_delivery_study)}
    assert ids(accession=ACCESSION[:-1]) == set()  # exact match only: the number is stored hashed
    today = utcnow().date()
    assert str(world.failed_draft_study) not in ids(**{"from": (today - dt.timedelta(days=1)).isoformat()})
    assert ids(to=(today - dt.timedelta(days=2)).isoformat()) == {str(world.failed_draft_study)}
    assert ids(state="failed", modality="CR") == {str(world.failed_delivery_study)}
    assert ids(state="prior") == set()  # a fetched prior never shows on the worklist
    row = next(i for i in admin.get("/api/studies").json()["items"] if i["id"] == str(world.failed_delivery_study))
    assert (row["patient_age"], row["patient_sex"]) == ("064Y", "F")
    html = admin.get("/", params={"modality": "CT"}).text
    assert "CHEST 2" in html and "CHEST 1" not in html and "exact match" in html


def test_study_page_images_prompt_warnings_and_retry_button(world: World, admin: TestClient) -> None:
    detail = admin.get(f"/api/studies/{world.failed_delivery_study}").json()
    assert detail["source_sop_instance_uids"] == [world.sop_uid]
    assert detail["consistency_warnings"] == ["laterality: left in findings, right in impression"]
    assert detail["prompt"] == "Describe this chest radiograph."
    assert (detail["series_chosen"]["slices_shown"], detail["series_chosen"]["slices_total"]) == (8, 300)
    assert [s["instance_count"] for s in detail["series"]] == [1]
    page = admin.get(f"/studies/{world.failed_delivery_study}").text
    thumb = f"/studies/{world.failed_delivery_study}/instances/{world.sop_uid}/thumbnail.png"
    assert thumb in page
    assert "laterality: left in findings" in page and "Describe this chest radiograph." in page
    assert "AX 1.0 LUNG" in page and "8 of 300 slices" in page
    assert f"/api/deliveries/{world.sr_delivery}/retry" in page  # the admin's button
    image = admin.get(thumb)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(image.content)) as im:
        assert max(im.size) == 192
        assert len(set(im.convert("L").tobytes())) > 10  # a picture, not a blank
    assert admin.get(f"/studies/{world.failed_delivery_study}/instances/1.2.3/thumbnail.png").status_code == 404
    assert admin.get(f"/studies/{world.failed_draft_study}/instances/{world.sop_uid}/thumbnail.png").status_code == 404


def test_system_page_and_metrics(world: World, admin: TestClient) -> None:
    from radassist.presence.report import report_start

    sessions = make_sessionmaker(world.settings)
    try:
        with sessions.begin() as s:  # a drafting worker reported in: listed though the broker cannot be asked
            report_start(s, "gpu-0@draft-host", ["gpu"], 4321, utcnow())
    finally:
        sessions.kw["bind"].dispose()
    system = admin.get("/api/system").json()
    assert [(w["name"], w["queues"], w["state"]) for w in system["workers_seen"]] == [
        ("gpu-0@draft-host", ["gpu"], "answering")]
    assert set(system["queue_depths"]) == {"gpu", "io", "cpu"}
    assert system["queue_error"] is None
    assert system["workers"] is None  # the embedded broker cannot be asked
    assert system["disk_free"] > 0
    assert system["counts_last_hour"]["delivering"] == 1 and system["counts_last_hour"]["failed"] == 0
    assert system["counts_last_day"]["failed"] == 1  # the 3-day-old failure is outside the day
    page = admin.get("/system").text
    assert "Messages waiting" in page and "free of" in page
    assert "gpu-0@draft-host" in page and "answering" in page
    metrics = admin.get("/metrics").text
    assert 'radassist_queue_depth{queue="io"}' in metrics
    assert 'radassist_workers{state="answering"} 1.0' in metrics and 'radassist_workers{state="silent"} 0.0' in metrics
    assert "radassist_delivery_duration_seconds" in metrics
    assert ACCESSION not in metrics


def test_system_page_says_what_retention_freed(world: World, admin: TestClient) -> None:
    from radassist.events import EventTag, record_event

    sessions = make_sessionmaker(world.settings)
    try:
        with sessions.begin() as s:
            record_event(s, EventTag.FILES_REMOVED, study_id=world.failed_delivery_study, files=3, bytes=3_000_000, reason="age")
    finally:
        sessions.kw["bind"].dispose()
    retention = admin.get("/api/system").json()["retention"]
    assert retention["total"] == retention["last_day"] == {"studies": 1, "files": 3, "bytes": 3_000_000}
    assert retention["last_removal_at"] is not None
    page = admin.get("/system").text
    assert "Retention freed" in page and "2.9 MiB" in page

