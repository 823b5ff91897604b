"""The measurement report of a grounded draft as an output: built beside the draft SR by the build task,
one delivery per destination whose SR class can carry image regions, delivered (and retried) like the
draft SR, with UIDs fixed by the job; a malformed grounding record fails only the report."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from pathlib import Path

import pydicom
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import DicomDestination, Settings
from radassist.db.base import utcnow
from radassist.db.tables import Delivery, Draft, Event, Instance, Job
from radassist.grounding import MappedFinding, PictureGeometry, SourceBox
from radassist.grounding.boxes import GroundingWarning
from radassist.grounding.record import grounding_record
from radassist.outputs.grounding import build_grounding_file, grounded_findings
from radassist.outputs.inputs import BuildInputs, read_headers
from radassist.sr.measurement_report import SERIES_DESCRIPTION, grounding_sr_uids
from radassist.states import DeliveryChannel, DeliveryState, JobState
from radassist.store.outputs import OutputStore
from tests.conftest import free_port
from tests.peers import storescp
from tests.workers.test_build import PACS, _deliveries, _with_outputs, drafted_job
from tests.workers.test_tasks import app, session  # noqa: F401 - fixtures

DCIODVFY = "/usr/bin/dciodvfy"
COMPREHENSIVE = DicomDestination(kind="dicom", name="comp", ae_title="COMP", host="127.0.0.1", port=106,
                                 sr_class="comprehensive")
BASIC = DicomDestination(kind="dicom", name="old", ae_title="OLD", host="127.0.0.1", port=105, sr_class="basic")
FINDING = "Dense focus in the right upper zone"


def _ground(session: Session, job: Job, *, record: dict | None = None) -> SourceBox:  # noqa: F811
    """Give the job's draft a grounding record with one box on its first instance."""
    instance = session.scalars(select(Instance).where(Instance.study_id == job.study_id)
                               .order_by(Instance.received_at)).first()
    assert instance is not None
    box = SourceBox(instance.sop_instance_uid, 1, 4.0, 3.0, 10.0, 9.0)
    picture = PictureGeometry(instance.sop_instance_uid, 1, 16, 16, 0)
    draft = session.scalars(select(Draft).where(Draft.job_id == job.id)).one()
    draft.generation = {**draft.generation, "grounding": record or grounding_record(
        "qwen2_5_vl", [MappedFinding(FINDING, (box,)), MappedFinding("No effusion")],
        [GroundingWarning("grounding.box.arity", "3 coordinates", None, 1)], [picture])}
    session.commit()
    return box


def _dciodvfy_errors(path: Path) -> list[str]:
    proc = subprocess.run([DCIODVFY, str(path)], check=False, capture_output=True, text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


def _regions(ds: pydicom.Dataset) -> list[tuple[list[float], str]]:
    """Every SCOORD's points and the SOP Instance UID it is drawn on."""
    found = []

    def walk(items: pydicom.Sequence) -> None:
        for item in items:
            if item.get("ValueType") == "SCOORD":
                found.append(([float(v) for v in item.GraphicData],
                              str(item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)))
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(ds.ContentSequence)
    return found


def test_a_grounded_draft_gets_a_report_for_each_destination_that_can_carry_one(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.build import build_outputs

    settings = _with_outputs(migrated_settings, PACS, COMPREHENSIVE, BASIC, ris=False)
    job = drafted_job(session, settings, tmp_path)
    box = _ground(session, job)
    build_outputs.apply(args=(str(job.id),)).get()
    build_outputs.apply(args=(str(job.id),)).get()  # a duplicated message builds nothing more
    rows = _deliveries(session, job)
    assert set(rows) == {(DeliveryChannel.SR, "pacs"), (DeliveryChannel.SR, "comp"), (DeliveryChannel.SR, "old"),
                         (DeliveryChannel.GROUNDING_SR, "pacs"), (DeliveryChannel.GROUNDING_SR, "comp")}
    assert {d.state for d in rows.values()} == {DeliveryState.PENDING}
    outputs = OutputStore(settings.storage.outputs_dir)
    for destination, sr_class, sop_class in (("pacs", "enhanced", pydicom.uid.EnhancedSRStorage),
                                              ("comp", "comprehensive", pydicom.uid.ComprehensiveSRStorage)):
        path = outputs.path(rows[(DeliveryChannel.GROUNDING_SR, destination)].payload_path or "")
        report = pydicom.dcmread(path)
        assert report.SOPClassUID == sop_class and report.SeriesDescription == SERIES_DESCRIPTION
        assert report.SOPInstanceUID == grounding_sr_uids(job.id, sr_class)[1]  # type: ignore[arg-type]
        assert (report.CompletionFlag, report.VerificationFlag, report.PreliminaryFlag) == (
            "PARTIAL", "UNVERIFIED", "PRELIMINARY")
        assert _regions(report) == [([4.0, 3.0, 10.0, 3.0, 10.0, 9.0, 4.0, 9.0, 4.0, 3.0], box.sop_instance_uid)]
        assert _dciodvfy_errors(path) == []
    draft_sr = pydicom.dcmread(outputs.path(rows[(DeliveryChannel.SR, "pacs")].payload_path or ""))
    assert draft_sr.SOPInstanceUID != grounding_sr_uids(job.id)[1]
    assert draft_sr.SeriesInstanceUID != grounding_sr_uids(job.id)[0]
    session.expire_all()
    event = session.scalars(select(Event).where(Event.job_id == job.id, Event.tag == "job:grounding_sr:built")).one()
    assert event.detail == {"sr_classes": ["enhanced", "comprehensive"], "boxes": 1}


def test_a_malformed_grounding_record_fails_only_the_report(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path  # noqa: F811
) -> None:
    from workers.tasks.build import build_outputs

    settings = _with_outputs(migrated_settings, PACS, ris=False)
    job = drafted_job(session, settings, tmp_path)
    _ground(session, job, record={"version": 1, "grammar": "qwen2_5_vl", "pictures": [], "warnings": [],
                                   "findings": [{"text": FINDING, "code": None, "boxes": [{"x_min": "left"}]}]})
    build_outputs.apply(args=(str(job.id),)).get()
    rows = _deliveries(session, job)
    assert rows[(DeliveryChannel.SR, "pacs")].state is DeliveryState.PENDING
    report = rows[(DeliveryChannel.GROUNDING_SR, "pacs")]
    assert report.state is DeliveryState.FAILED and report.last_error_code == "output.build"
    assert report.last_error_message == ("the grounding record of the draft cannot be read: Field \"x_min\" of "
                                         "box 0 of finding 0 of the grounding record is missing or malformed.")


def test_the_report_is_delivered_and_retried_like_the_draft_sr(
    app: Celery, session: Session, migrated_settings: Settings, tmp_path: Path  # noqa: F811
) -> None:
    """The PACS is down at first: the report is retried, then stored, the same object; the job is done."""
    from workers.tasks.build import build_outputs
    from workers.tasks.deliver import deliver

    port = free_port()
    pacs = DicomDestination(kind="dicom", name="pacs", ae_title="PACS", host="127.0.0.1", port=port)
    settings = _with_outputs(migrated_settings, pacs, ris=False)
    job = drafted_job(session, settings, tmp_path)
    _ground(session, job)
    build_outputs.apply(args=(str(job.id),)).get()
    rows = _deliveries(session, job)
    report = rows[(DeliveryChannel.GROUNDING_SR, "pacs")]
    before = utcnow()
    deliver.apply(args=(str(report.id),)).get()  # nothing listens on the port yet
    session.expire_all()
    report = session.get(Delivery, report.id)  # type: ignore[assignment]
    assert report.state is DeliveryState.PENDING and report.attempts == 1
    assert report.last_error_code and report.next_attempt_at > before
    report.next_attempt_at = utcnow() - dt.timedelta(seconds=1)
    session.commit()
    with storescp(tmp_path / "pacs", port=port) as received:
        for row in rows.values():
            deliver.apply(args=(str(row.id),)).get()
    session.expire_all()
    assert {d.state for d in _deliveries(session, job).values()} == {DeliveryState.DELIVERED}
    assert session.get(Job, job.id).state is JobState.DONE  # type: ignore[union-attr]
    uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in received.folder.iterdir()}
    assert grounding_sr_uids(job.id)[1] in uids and len(uids) == 2


def test_building_again_gives_the_same_object(tmp_path: Path) -> None:
    from tests.dicom_factories import make_ct_study, write_study

    instances = make_ct_study(series_count=1, instances_per_series=2)
    paths = write_study(instances, tmp_path / "study")
    inputs = BuildInputs(sources=read_headers(paths), order=None, indication=None)
    box = SourceBox(str(instances[1].SOPInstanceUID), 1, 2.0, 2.0, 6.0, 5.0)
    record = grounding_record("qwen2_5_vl", [MappedFinding(FINDING, (box,))], [], [])
    findings = grounded_findings({"grounding": record})
    draft = Draft(job_id=uuid.uuid4(), findings="", impression="", raw_text="", model_name="tiny", prompt="",
                  prompt_version="2", generation={"grounding": record})
    outputs = OutputStore(tmp_path / "outputs")
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    first = build_grounding_file(inputs, findings, draft, draft.job_id, "enhanced", now, outputs)
    again = build_grounding_file(inputs, findings, draft, draft.job_id, "enhanced", now, outputs)
    assert again == first  # the same SOP Instance UID, stored in the same place (overwritten, not added)
    assert [p.name for p in outputs.path(first[1]).parent.iterdir()] == ["grounding-sr.dcm"]
    stored = pydicom.dcmread(outputs.path(first[1]))
    assert (stored.SeriesInstanceUID, stored.SOPInstanceUID) == grounding_sr_uids(draft.job_id)
    assert grounded_findings({"indication": "Cough."}) == ()  # a draft that is not grounded has no report
