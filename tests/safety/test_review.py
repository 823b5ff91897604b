"""The radiologist's side, through the API and the pages on both databases: held drafts released or
discarded, held outputs sent anyway or cancelled, verdicts and their CSV, the review queue, and what
the worklist and the study page show of it all."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import AuditEntry, Delivery, Draft, DraftVerdict, Event, Job, Study
from radassist.safety import EXPLANATIONS, Check
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
from radassist.web.app import create_app
from radassist.web.system import SystemProbe
from tests.web.support import add_user, bearer, csrf_of, login

ANATOMY = {"check": "anatomy", "policy": "hold",
           "message": "the report describes lungs (chest), but this study images the breast"}
LATERALITY = {"check": "laterality", "policy": "annotate",
              "message": "the report mentions the left side, but every image is labelled right"}


@dataclass
class World:
    settings: Settings
    held: uuid.UUID
    """Study with a draft held for review (anatomy)."""
    held_job: uuid.UUID
    held_two_job: uuid.UUID
    annotated: uuid.UUID
    annotated_job: uuid.UUID
    no_order: uuid.UUID
    no_order_delivery: uuid.UUID
    no_patient_job: uuid.UUID
    no_patient_delivery: uuid.UUID
    bare_job: uuid.UUID
    """A failed job with no draft."""


def _study(n: int, modality: str, description: str, at: dt.datetime) -> Study:
    return Study(id=uuid.uuid4(), study_instance_uid=f"1.2.826.0.1.3680043.8.498.21{n}", modality=modality,
                 study_description=description, calling_ae_title="MOD1", called_ae_title="RADASSIST",
                 state=StudyState.COMPLETE, instance_count=1, first_received_at=at, last_received_at=at, completed_at=at)


def _job(study: Study, state: JobState, at: dt.datetime) -> Job:
    return Job(id=uuid.uuid4(), study_id=study.id, state=state, model_name="m", attempts=1, created_at=at,
               started_at=at, drafted_at=at)


def _draft(job: Job, profile: str, model: str, warnings: list[dict[str, str]], at: dt.datetime) -> Draft:
    checks = " ".join(w["check"] for w in warnings)
    return Draft(job_id=job.id, findings="The lungs are clear.", impression="Normal.", raw_text="x", model_name=model,
                 prompt="p", prompt_version="2", generation={}, profile=profile, warnings=warnings,
                 warning_checks=f" {checks} " if checks else "", created_at=at)


def _seed(settings: Settings) -> World:
    now = utcnow()
    sessions = make_sessionmaker(settings)
    try:
        with sessions.begin() as s:
            held, held_two = _study(1, "MG", "MAMMO R CC", now - dt.timedelta(minutes=50)), _study(
                2, "CT", "CT HEAD", now - dt.timedelta(minutes=40))
            annotated, no_order = _study(3, "CR", "CHEST PA", now - dt.timedelta(minutes=30)), _study(
                4, "MG", "MAMMO L", now - dt.timedelta(minutes=20))
            no_patient, bare = _study(5, "MR", "MR BRAIN", now - dt.timedelta(minutes=10)), _study(
                6, "CR", "CHEST", now - dt.timedelta(minutes=5))
            s.add_all([held, held_two, annotated, no_order, no_patient, bare])
            s.flush()
            jobs = [_job(held, JobState.NEEDS_REVIEW, now), _job(held_two, JobState.NEEDS_REVIEW, now),
                    _job(annotated, JobState.DONE, now), _job(no_order, JobState.DELIVERING, now),
                    _job(no_patient, JobState.DELIVERING, now), _job(bare, JobState.FAILED, now)]
            s.add_all(jobs)
            s.flush()
            s.add_all([
                _draft(jobs[0], "mammography", "tiny-a", [ANATOMY], now - dt.timedelta(minutes=49)),
                _draft(jobs[1], "ct_head", "tiny-a", [ANATOMY], now - dt.timedelta(minutes=39)),
                _draft(jobs[2], "cxr", "tiny-b", [LATERALITY], now - dt.timedelta(minutes=29)),
                _draft(jobs[3], "mammography", "tiny-b", [], now - dt.timedelta(minutes=19)),
                _draft(jobs[4], "mr_brain", "tiny-b", [], now - dt.timedelta(minutes=9)),
            ])
            sr = {"channel": DeliveryChannel.SR, "destination": "pacs", "state": DeliveryState.DELIVERED}
            no_order_oru = Delivery(job_id=jobs[3].id, channel=DeliveryChannel.HL7, destination="ris",
                                    state=DeliveryState.HELD, payload_path="x/draft-oru.hl7", control_id="c1",
                                    last_error_code="hl7.no_order", last_error_message="no accession, no order")
            no_pid_oru = Delivery(job_id=jobs[4].id, channel=DeliveryChannel.HL7, destination="ris",
                                  state=DeliveryState.HELD, last_error_code="hl7.no_patient_id",
                                  last_error_message="the study has no PatientID")
            s.add_all([Delivery(job_id=jobs[3].id, **sr), Delivery(job_id=jobs[4].id, **sr), no_order_oru, no_pid_oru])
            s.flush()
            return World(settings, held.id, jobs[0].id, jobs[1].id, annotated.id, jobs[2].id, no_order.id,
                         no_order_oru.id, jobs[4].id, no_pid_oru.id, jobs[5].id)
    finally:
        sessions.kw["bind"].dispose()


@pytest.fixture
def world(migrated_settings: Settings) -> World:
    return _seed(migrated_settings)


@pytest.fixture
def clients(world: World) -> Iterator[dict[str, TestClient]]:
    app = create_app(world.settings)
    made = {role: TestClient(app, headers=bearer(add_user(world.settings, f"{role}1", role)))
            for role in ("admin", "radiologist", "viewer")}
    with made["admin"], made["radiologist"], made["viewer"]:
        yield made


def _io(settings: Settings) -> int:
    return SystemProbe(settings).status().queue_depths["io"] or 0


def _get(settings: Settings, entity: type, key: uuid.UUID) -> object:
    sessions = make_sessionmaker(settings)
    try:
        with sessions() as s:
            row = s.get(entity, key)
            s.expunge_all()
            return row
    finally:
        sessions.kw["bind"].dispose()


def _rows(settings: Settings, stmt: object) -> list[object]:
    sessions = make_sessionmaker(settings)
    try:
        with sessions() as s:
            return list(s.execute(stmt).all())  # type: ignore[call-overload]
    finally:
        sessions.kw["bind"].dispose()


def test_the_worklist_shows_needs_review_and_the_warnings(world: World, clients: dict[str, TestClient]) -> None:
    viewer = clients["viewer"]

    def ids(**params: str) -> list[str]:
        body = viewer.get("/api/studies", params=params).json()
        assert body["total"] == len(body["items"])
        return sorted(i["id"] for i in body["items"])

    assert ids(state="needs_review") == sorted([str(world.held), str(_study_of(world, world.held_two_job))])
    assert ids(warnings="laterality") == [str(world.annotated)]
    assert len(ids(warnings="any")) == 3 and ids(warnings="sex") == []
    assert viewer.get("/api/studies", params={"warnings": "nonsense"}).status_code == 422
    items = {i["id"]: i for i in viewer.get("/api/studies").json()["items"]}
    assert items[str(world.held)]["warnings"] == ["anatomy"] and items[str(world.held)]["state"] == "needs_review"
    # A held output names its whole cause on the worklist.
    no_order = items[str(world.no_order)]
    assert (no_order["state"], no_order["error_code"]) == ("delivering", "hl7.no_order")
    assert no_order["error_message"] == "hl7 to ris held: no accession, no order"
    page = viewer.get("/").text
    assert 'class="badge state-needs_review">needs_review</span> 2' in page  # its own count and colour
    assert '<a class="check" href="/?warnings=anatomy">anatomy</a>' in page
    assert ".state-needs_review" in page


def _study_of(world: World, job_id: uuid.UUID) -> uuid.UUID:
    job = _get(world.settings, Job, job_id)
    return job.study_id  # type: ignore[attr-defined,no-any-return]


def test_the_study_page_shows_warnings_above_the_draft(world: World, clients: dict[str, TestClient]) -> None:
    detail = clients["viewer"].get(f"/api/studies/{world.held}").json()
    assert detail["review"]["held"] is True
    assert detail["review"]["warnings"] == [{**ANATOMY, "explanation": EXPLANATIONS[Check.ANATOMY]}]
    page = clients["radiologist"].get(f"/studies/{world.held}").text
    assert page.index('id="safety"') < page.index("<h2>Draft</h2>")
    assert "Held for review: nothing has been sent" in page and EXPLANATIONS[Check.ANATOMY] in page
    assert f'action="/api/jobs/{world.held_job}/release"' in page and f"/api/jobs/{world.held_job}/discard" in page
    viewer_page = clients["viewer"].get(f"/studies/{world.held}").text
    assert EXPLANATIONS[Check.ANATOMY] in viewer_page and "/release" not in viewer_page  # a viewer only looks
    annotated = clients["radiologist"].get(f"/studies/{world.annotated}").text
    assert "Safety warnings" in annotated and "policy annotate" in annotated and "/release" not in annotated


def test_a_radiologist_releases_and_discards_held_drafts(world: World, clients: dict[str, TestClient]) -> None:
    radiologist, viewer = clients["radiologist"], clients["viewer"]
    release = f"/api/jobs/{world.held_job}/release"
    assert viewer.post(release, json={"reason": "fine"}).status_code == 403
    assert radiologist.post(release, json={"reason": 7}).status_code == 422
    assert radiologist.post(release, json={}).status_code == 409
    blank = radiologist.post(release, json={"reason": "  \t "})
    assert blank.status_code == 409 and blank.json()["message"] == "a reason is required"
    before = _io(world.settings)
    done = radiologist.post(release, json={"reason": "the lungs are the chest wall; text is fine"})
    assert done.status_code == 200 and done.json()["ok"] is True
    assert _get(world.settings, Job, world.held_job).state is JobState.DRAFTED  # type: ignore[attr-defined]
    assert _io(world.settings) == before + 1  # its outputs are built next
    assert radiologist.post(release, json={"reason": "again"}).status_code == 409
    assert radiologist.post(f"/api/jobs/{world.held_job}/discard", json={"reason": "late"}).status_code == 409

    discard = clients["admin"].post(f"/api/jobs/{world.held_two_job}/discard",
                                    data={"reason": "chest report on a head CT"})
    assert discard.status_code == 200
    job = _get(world.settings, Job, world.held_two_job)
    assert job.state is JobState.DISCARDED and job.error_code == "review.discarded"  # type: ignore[attr-defined]
    assert job.error_message == "discarded by admin1 in review: chest report on a head CT"  # type: ignore[attr-defined]
    assert _io(world.settings) == before + 1  # nothing more to send
    audit = _rows(world.settings, select(AuditEntry.action, AuditEntry.outcome, AuditEntry.user_name,
                                         AuditEntry.detail).order_by(AuditEntry.id))
    assert [(a[0], a[1], a[2]) for a in audit] == [
        ("release_draft", "refused", "radiologist1"), ("release_draft", "refused", "radiologist1"),
        ("release_draft", "done", "radiologist1"),
        ("release_draft", "refused", "radiologist1"), ("discard_draft", "refused", "radiologist1"),
        ("discard_draft", "done", "admin1")]
    assert audit[2][3] == {"reason": "the lungs are the chest wall; text is fine"}
    tags = [t for (t,) in _rows(world.settings, select(Event.tag).where(
        Event.job_id.in_([world.held_job, world.held_two_job])).order_by(Event.id))]
    assert tags == ["job:draft:released", "job:draft:discarded"]


def test_an_admin_sends_or_cancels_held_outputs(world: World, clients: dict[str, TestClient]) -> None:
    admin, radiologist = clients["admin"], clients["radiologist"]
    send = f"/api/deliveries/{world.no_order_delivery}/send-anyway"
    assert send in admin.get(f"/studies/{world.no_order}").text
    assert "/send-anyway" not in radiologist.get(f"/studies/{world.no_order}").text  # an admin's decision
    assert radiologist.post(send).status_code == 403
    before = _io(world.settings)
    assert admin.post(send).status_code == 200
    sent = _get(world.settings, Delivery, world.no_order_delivery)
    assert sent.state is DeliveryState.PENDING and sent.last_error_code is None  # type: ignore[attr-defined]
    assert _io(world.settings) == before + 1
    assert admin.post(send).status_code == 409
    # An ORU that was never built cannot be sent anyway; cancelled, the job is done (its SR arrived).
    no_patient_page = admin.get(f"/studies/{_study_of(world, world.no_patient_job)}").text
    assert f"/api/deliveries/{world.no_patient_delivery}/cancel" in no_patient_page
    assert f"/api/deliveries/{world.no_patient_delivery}/send-anyway" not in no_patient_page  # nothing to send
    refused = admin.post(f"/api/deliveries/{world.no_patient_delivery}/send-anyway")
    assert refused.status_code == 409 and "nothing was built" in refused.json()["message"]
    assert admin.post(f"/api/deliveries/{world.no_patient_delivery}/cancel").status_code == 200
    assert _get(world.settings, Delivery, world.no_patient_delivery).state is DeliveryState.CANCELLED  # type: ignore[attr-defined]
    job = _get(world.settings, Job, world.no_patient_job)
    assert job.state is JobState.DONE and job.finished_at is not None  # type: ignore[attr-defined]
    assert admin.post(f"/api/deliveries/{world.no_patient_delivery}/cancel").status_code == 409
    page = admin.get(f"/studies/{world.no_order}").text
    assert "send-anyway" not in page  # sent: no longer held


def test_verdicts_are_kept_replaced_audited_and_exported(world: World, clients: dict[str, TestClient]) -> None:
    radiologist, admin, viewer = clients["radiologist"], clients["admin"], clients["viewer"]
    url = f"/api/jobs/{world.annotated_job}/verdict"
    assert viewer.post(url, json={"verdict": "useful_as_is"}).status_code == 403
    assert radiologist.post(url, json={"verdict": "brilliant"}).status_code == 422
    assert radiologist.post(url, json={}).json()["message"].startswith("a verdict is required")
    needs_reason = radiologist.post(url, json={"verdict": "not_useful"})
    assert needs_reason.status_code == 409 and "at least one reason" in needs_reason.json()["message"]
    first = radiologist.post(url, json={"verdict": "useful_with_edits", "reasons": ["wrong_side", "poor_wording"],
                                        "corrected_text": "=SUM(A1) Right lung clear.", "seconds_spent": 42.5})
    assert first.status_code == 200
    assert radiologist.post(url, json={"verdict": "useful_as_is", "seconds_spent": 12}).status_code == 200
    assert admin.post(url, json={"verdict": "not_useful", "reasons": ["invented_finding"]}).status_code == 200
    assert radiologist.post(f"/api/jobs/{world.bare_job}/verdict", json={"verdict": "useful_as_is"}).status_code == 409
    rows = _rows(world.settings, select(DraftVerdict.user_name, DraftVerdict.verdict, DraftVerdict.reasons,
                                        DraftVerdict.corrected_text).order_by(DraftVerdict.user_name))
    assert [tuple(r) for r in rows] == [("admin1", "not_useful", ["invented_finding"], None),
                                        ("radiologist1", "useful_as_is", [], None)]
    verdicts = viewer.get(f"/api/studies/{world.annotated}").json()["review"]["verdicts"]
    assert {(v["user_name"], v["verdict"]) for v in verdicts} == {("admin1", "not_useful"),
                                                                  ("radiologist1", "useful_as_is")}
    tags = [t for (t,) in _rows(world.settings, select(Event.tag).where(Event.job_id == world.annotated_job))]
    assert tags.count("job:verdict:given") == 3

    assert viewer.get("/api/verdicts.csv").status_code == 403
    # Give the corrected text again, to see it exported safely.
    radiologist.post(url, json={"verdict": "useful_with_edits", "reasons": ["wrong_side"],
                                "corrected_text": "=SUM(A1) Right lung clear."})
    export = radiologist.get("/api/verdicts.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(export.text)))
    assert len(table) == 2
    mine = next(r for r in table if r["user_name"] == "radiologist1")
    assert (mine["verdict"], mine["reasons"], mine["profile"], mine["model_name"]) == (
        "useful_with_edits", "wrong_side", "cxr", "tiny-b")
    assert mine["corrected_text"] == "'=SUM(A1) Right lung clear."  # never a formula in a spreadsheet
    assert mine["warnings"] == "laterality" and mine["study_id"] == str(world.annotated)


def test_the_review_queue_puts_held_drafts_first(world: World, clients: dict[str, TestClient]) -> None:
    viewer = clients["viewer"]

    def queue(**params: str) -> list[tuple[str, bool]]:
        return [(r["job_id"], r["held"]) for r in viewer.get("/api/review", params=params).json()]

    everything = queue()
    assert everything[:2] == [(str(world.held_job), True), (str(world.held_two_job), True)]  # oldest held first
    assert [held for _, held in everything[2:]] == [False, False, False]
    assert everything[2][0] == str(world.no_patient_job)  # then the most recent without a verdict
    assert queue(modality="MG") == [(str(world.held_job), True), (next(
        r["job_id"] for r in viewer.get("/api/review").json() if r["profile"] == "mammography" and not r["held"]), False)]
    assert queue(profile="ct_head") == [(str(world.held_two_job), True)]
    assert {job for job, _ in queue(model="tiny-b")} == {str(world.annotated_job), str(world.no_patient_job),
                                                          next(r["job_id"] for r in viewer.get("/api/review").json()
                                                               if r["profile"] == "mammography" and not r["held"])}
    clients["radiologist"].post(f"/api/jobs/{world.annotated_job}/verdict", json={"verdict": "useful_as_is"})
    assert str(world.annotated_job) not in {job for job, _ in queue()}  # rated: off the queue
    page = viewer.get("/review", params={"modality": "MG"}).text
    assert "MAMMO R CC" in page and "CHEST PA" not in page and 'class="held"' in page


def test_forms_need_the_csrf_token(world: World) -> None:
    add_user(world.settings, "rad2", "radiologist")
    with TestClient(create_app(world.settings)) as browser:
        login(browser, "rad2")
        page = browser.get(f"/studies/{world.held}").text
        refused = browser.post(f"/api/jobs/{world.held_job}/release", data={"reason": "ok"})
        assert refused.status_code == 403
        done = browser.post(f"/api/jobs/{world.held_job}/release", follow_redirects=False,
                            data={"reason": "ok", "csrf_token": csrf_of(page), "next": f"/studies/{world.held}"})
        assert done.status_code == 303 and done.headers["location"] == f"/studies/{world.held}"
        assert _get(world.settings, Job, world.held_job).state is JobState.DRAFTED  # type: ignore[attr-defined]
        page = browser.get(f"/studies/{world.annotated}").text
        verdict = browser.post(f"/api/jobs/{world.annotated_job}/verdict", follow_redirects=False, data={
            "verdict": "useful_with_edits", "reasons": ["wrong_side", "other"], "corrected_text": "",
            "seconds_spent": "", "csrf_token": csrf_of(page), "next": "/review"})
        assert verdict.status_code == 303
    rows = _rows(world.settings, select(DraftVerdict.reasons, DraftVerdict.corrected_text, DraftVerdict.seconds_spent))
    assert [tuple(r) for r in rows] == [(["wrong_side", "other"], None, None)]


def test_the_timeline_is_in_the_order_events_were_written(world: World, clients: dict[str, TestClient]) -> None:
    """A worker whose clock runs behind the listener's still appears after it."""
    sessions = make_sessionmaker(world.settings)
    now = utcnow()
    with sessions.begin() as s:
        s.add(Event(tag="job:draft:completed", study_id=world.annotated, job_id=world.annotated_job, at=now, detail={}))
        s.add(Event(tag="job:sr:built", study_id=world.annotated, job_id=world.annotated_job,
                    at=now - dt.timedelta(seconds=3), detail={}))
    sessions.kw["bind"].dispose()
    tags = [e["tag"] for e in clients["viewer"].get(f"/api/studies/{world.annotated}").json()["events"]]
    assert tags == ["job:draft:completed", "job:sr:built"]
