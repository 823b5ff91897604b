"""The priors stage with Orthanc as the archive: a completed study's priors are found, fetched, stored as
priors and recorded; the draft's prompt quotes the prior's report; the SR and the ORU name the
comparison; a source that is down, silent or empty never holds the job back, and the draft says why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import time
import uuid
from collections.abc import Callable

import hl7
import pydicom
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from radassist.config import PromptProfileSettings
from radassist.config.priors import PriorRule
from radassist.config.quality import ShadowSettings
from radassist.db.tables import Delivery, Draft, Event, Instance, Job, JobPrior, PriorSearch, Study
from radassist.read.worklist import count_studies, list_studies
from radassist.states import DeliveryChannel, JobState, StudyState
from radassist.web.app import create_app
from tests.prefetch.conftest import RIS_REPORT_B, Node
from tests.priors.conftest import Archive
from tests.priors.factories import REPORT_A_IMPRESSION, make_cxr_study
from tests.priors.test_fetch_orthanc import archive_source, source
from tests.web.support import add_user, bearer

DCIODVFY = "/usr/bin/dciodvfy"


def _run_priors(node: Node, job_id: uuid.UUID) -> None:
    from workers.tasks.priors import fetch_priors

    fetch_priors.apply(args=(str(job_id),)).get()


def _draft_and_build(job_id: uuid.UUID) -> None:
    from tests.drafting.conftest import prepare
    from workers.tasks.build import build_outputs
    from workers.tasks.draft import draft_study

    prepare(job_id)
    draft_study.apply(args=(str(job_id),)).get()
    build_outputs.apply(args=(str(job_id),)).get()


def _outputs(node: Node, job_id: uuid.UUID) -> tuple[pydicom.Dataset, hl7.Message]:
    outputs = node.settings.storage.outputs_dir
    with node.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.sr_path is not None, job
        oru_path = session.scalar(select(Delivery.payload_path).where(Delivery.job_id == job_id,
                                                                       Delivery.channel == DeliveryChannel.HL7))
    assert oru_path is not None
    sr = pydicom.dcmread(outputs / job.sr_path)
    return sr, hl7.parse((outputs / oru_path).read_bytes().decode("utf-8"))


def _comparison_texts(sr: pydicom.Dataset) -> list[str]:
    section = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "55114-3")
    return [i.TextValue for i in section.ContentSequence if i.ValueType == "TEXT"]


def _oru_comparison(message: hl7.Message) -> list[str]:
    return [str(obx[5]) for obx in message.segments("OBX") if str(obx[3][0][0]) == "55114-3"]


def _study_page(node: Node, study_uid: str, image: str | None = None) -> str:
    """The study page as a viewer sees it (and, when given, that ``image`` renders)."""
    with node.sessions() as session:
        study_id = session.scalar(select(Study.id).where(Study.study_instance_uid == study_uid))
    token = add_user(node.settings, "viewer1", "viewer")
    with TestClient(create_app(node.settings), headers=bearer(token)) as client:
        page = client.get(f"/studies/{study_id}")
        assert page.status_code == 200
        if image is not None:
            picture = client.get(image)
            assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        return page.text


def test_a_study_is_drafted_against_its_priors_and_its_outputs_name_them(
    archive: Archive, make_node: Callable[..., Node], database_url: str, closed_port: int
) -> None:
    node = make_node(archive_source("dicom-get", archive), database_url, hl7_host="127.0.0.1",
                     hl7_port=str(closed_port))
    history = archive.history
    node.receive(history.current)
    [job_id] = node.complete()
    with node.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.PRIORS  # sources configured: priors first

    _run_priors(node, job_id)

    prior_a, prior_b = str(history.prior_a[0].StudyInstanceUID), str(history.prior_b[0].StudyInstanceUID)
    with node.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.QUEUED
        search = session.get(PriorSearch, job_id)
        assert search is not None and search.reason_code is None and search.profile == "cxr"
        assert search.sources_tried == ["archive"]
        rows = session.scalars(select(JobPrior).where(JobPrior.job_id == job_id).order_by(JobPrior.rank)).all()
        assert [r.study_instance_uid for r in rows] == [prior_a, prior_b]
        assert rows[0].report_origin == "sr" and REPORT_A_IMPRESSION in (rows[0].report_text or "")
        assert rows[1].report_origin == "ris" and rows[1].report_text == RIS_REPORT_B
        # Stored and recorded like received instances, in study rows marked as priors: the PA only.
        priors = {s.study_instance_uid: s for s in session.scalars(select(Study).where(Study.state == StudyState.PRIOR))}
        assert set(priors) == {prior_a, prior_b}
        stored = session.scalars(select(Instance).where(Instance.study_id == priors[prior_a].id)).all()
        assert [i.sop_instance_uid for i in stored] == [str(history.prior_a[0].SOPInstanceUID)]
        assert (node.settings.storage.instances_dir / stored[0].path).is_file()
        assert rows[0].prior_study_id == priors[prior_a].id
        assert session.scalars(select(Job).where(Job.study_id.in_([s.id for s in priors.values()]))).all() == []
        searched = session.scalars(select(Event).where(Event.job_id == job_id, Event.tag == "job:priors:searched")).one()
        assert searched.detail["found"] == 2 and searched.detail["code"] is None
        # The worklist shows the current study alone: a prior is no study to draft.
        assert [r.study_instance_uid for r in list_studies(session)] == [str(history.current[0].StudyInstanceUID)]
        assert count_studies(session) == 1

    _draft_and_build(job_id)

    with node.sessions() as session:
        draft = session.scalars(select(Draft).where(Draft.job_id == job_id)).one()
        assert draft.prompt_version == "3"
        assert "Prior study for comparison: XR CHEST 2 VIEWS (DX) of 2023-01-10." in draft.prompt, draft.prompt
        assert REPORT_A_IMPRESSION in draft.prompt and RIS_REPORT_B in draft.prompt
        assert draft.generation["comparison"]["study_instance_uids"] == [prior_a, prior_b]
        assert "Compared with the prior study" in draft.findings
    sr, oru = _outputs(node, job_id)
    assert _comparison_texts(sr) == ["Comparison: XR CHEST 2 VIEWS (DX) of 2023-01-10.",
                                     "Comparison: XR CHEST 2 VIEWS (DX) of 2021-05-05."]
    others = {item.StudyInstanceUID for item in sr.PertinentOtherEvidenceSequence}
    assert others == {prior_a, prior_b}
    assert {item.StudyInstanceUID for item in sr.CurrentRequestedProcedureEvidenceSequence} == {sr.StudyInstanceUID}
    path = node.settings.storage.outputs_dir / "check.dcm"
    sr.save_as(path, enforce_file_format=True)
    check = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    assert [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")] == []
    assert _oru_comparison(oru) == _comparison_texts(sr)

    page = _study_page(node, str(history.current[0].StudyInstanceUID))
    assert "<h2>Comparison</h2>" in page and "XR CHEST 2 VIEWS (DX) of 2023-01-10" in page
    assert RIS_REPORT_B in page and "the RIS&#39;s signed report" in page


@pytest.mark.parametrize("kind", ["dicomweb", "orthanc"])
def test_every_kind_of_source_feeds_the_stage(archive: Archive, make_node: Callable[..., Node], kind: str,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'radassist.sqlite3'}"
    node = make_node(archive_source(kind, archive), url)
    node.receive(archive.history.current)
    [job_id] = node.complete()
    _run_priors(node, job_id)
    with node.sessions() as session:
        search = session.get(PriorSearch, job_id)
        assert search is not None and search.reason_code is None
        uids = session.scalars(select(JobPrior.study_instance_uid).where(JobPrior.job_id == job_id)
                               .order_by(JobPrior.rank)).all()
        assert uids == [str(archive.history.prior_a[0].StudyInstanceUID), str(archive.history.prior_b[0].StudyInstanceUID)]
        stored = session.scalars(select(Instance.sop_instance_uid).join(Study, Study.id == Instance.study_id)
                                 .where(Study.state == StudyState.PRIOR)).all()
        assert set(stored) == {str(archive.history.prior_a[0].SOPInstanceUID), str(archive.history.prior_b[0].SOPInstanceUID)}


def _unavailable(node: Node, job_id: uuid.UUID, code: str, reason: str) -> None:
    """The job went on without a prior; its draft, SR, ORU and study page say why."""
    with node.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state is JobState.QUEUED
        search = session.get(PriorSearch, job_id)
        assert search is not None and (search.reason_code, search.reason) == (code, reason)
        assert session.scalars(select(JobPrior).where(JobPrior.job_id == job_id)).all() == []
    _draft_and_build(job_id)
    with node.sessions() as session:
        draft = session.scalars(select(Draft).where(Draft.job_id == job_id)).one()
        assert "Prior studies: none available for comparison" in draft.prompt
    sr, oru = _outputs(node, job_id)
    said = f"Comparison: none available. {reason}"
    assert _comparison_texts(sr) == [said] and _oru_comparison(oru) == [said]
    assert "PertinentOtherEvidenceSequence" not in sr


def test_a_source_that_is_down_never_holds_the_job_back(
    make_node: Callable[..., Node], database_url: str, closed_port: int
) -> None:
    down = source("dicom-get", port=closed_port)
    node = make_node(down, database_url, hl7_host="127.0.0.1", hl7_port=str(closed_port))
    node.receive(make_cxr_study(dt.datetime(2024, 3, 14, 9, 30)))
    [job_id] = node.complete()
    _run_priors(node, job_id)
    _unavailable(node, job_id, "priors.source_down", "The prior source could not be reached.")
    with node.sessions() as session:
        study_uid = session.scalar(select(Study.study_instance_uid).join(Job, Job.study_id == Study.id)
                                   .where(Job.id == job_id))
    page = _study_page(node, str(study_uid))
    assert "No prior available for comparison." in page and "The prior source could not be reached." in page
    assert "priors.source_down" in page


def test_a_silent_source_is_given_up_at_the_time_limit(
    make_node: Callable[..., Node], silent_port: int, closed_port: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'radassist.sqlite3'}"
    node = make_node(source("dicomweb", port=silent_port, timeout_seconds=30), url, time_limit=2.0,
                     hl7_host="127.0.0.1", hl7_port=str(closed_port))
    node.receive(make_cxr_study(dt.datetime(2024, 3, 14, 9, 30)))
    [job_id] = node.complete()
    started = time.monotonic()
    _run_priors(node, job_id)
    waited = time.monotonic() - started
    with node.sessions() as session:
        search = session.get(PriorSearch, job_id)
        assert search is not None and search.elapsed_seconds <= waited
    assert waited < 30  # the task returned at the search's time limit, not at the source's timeout
    _unavailable(node, job_id, "priors.timeout", "The prior source did not answer within the time limit.")


def test_a_patient_without_priors_is_drafted_saying_so(
    archive: Archive, make_node: Callable[..., Node], closed_port: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'radassist.sqlite3'}"
    node = make_node(archive_source("dicom-get", archive), url, hl7_host="127.0.0.1", hl7_port=str(closed_port))
    node.receive(make_cxr_study(dt.datetime(2024, 3, 14, 9, 30), patient_id="NO-PRIORS-1"))
    [job_id] = node.complete()
    _run_priors(node, job_id)
    _unavailable(node, job_id, "priors.none_found", "No earlier relevant study of this patient was found.")


MAIRA_LIKE = PromptProfileSettings(name="cxr-with-prior", modalities=("DX", "CR"), body_parts=("CHEST",),
                                   instruction="Compare the current chest radiograph with the prior.",
                                   image_order=("current", "prior"), max_prior_images=1)


def test_a_profile_that_takes_prior_images_gets_the_newest_priors_picture_after_the_current_ones(
    archive: Archive, make_node: Callable[..., Node], closed_port: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'radassist.sqlite3'}"
    rule = PriorRule(profile="cxr-with-prior", views=("PA", "AP"), most_recent=1)
    node = make_node(archive_source("orthanc", archive), url, rules=(rule,), profiles=(MAIRA_LIKE,),
                     hl7_host="127.0.0.1", hl7_port=str(closed_port))
    node.receive(archive.history.current)
    [job_id] = node.complete()
    _run_priors(node, job_id)
    _draft_and_build(job_id)
    prior_pa = str(archive.history.prior_a[0].SOPInstanceUID)
    with node.sessions() as session:
        draft = session.scalars(select(Draft).where(Draft.job_id == job_id)).one()
        prior_study_id = session.scalar(select(JobPrior.prior_study_id).where(JobPrior.job_id == job_id))
    record = draft.generation
    assert record["profile"] == "cxr-with-prior" and record["image_order"] == ["current", "prior"]
    assert record["image_labels"] == ["PA", "lateral"]  # current frontal, current lateral ...
    assert record["prior_image_labels"] == ["prior PA (2023-01-10)"]  # ... then the prior frontal
    assert record["prior_images"] == 1 and record["prior_sop_instance_uids"] == [prior_pa]
    assert ("Of the images above, the first 2 images are from this study, in reading order; the last image is "
            "from the prior study (XR CHEST 2 VIEWS (DX) of 2023-01-10).") in draft.prompt
    thumbnail = f"/studies/{prior_study_id}/instances/{prior_pa}/thumbnail.png"
    page = _study_page(node, str(archive.history.current[0].StudyInstanceUID), image=thumbnail)
    assert thumbnail in page and "prior, shown to the model" in page


def test_a_shadow_model_compares_with_the_priors_its_study_job_fetched_without_asking_again(
    archive: Archive, make_node: Callable[..., Node], closed_port: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The shadow job's own message, taken first, searches nothing; the study's job's search then
    queues both, each with the same priors and reports."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'radassist.sqlite3'}"
    node = make_node(archive_source("dicom-get", archive), url, hl7_host="127.0.0.1", hl7_port=str(closed_port))
    shadows = node.settings.quality.model_copy(update={"shadows": (ShadowSettings(model_name="tiny-shadow"),)})
    node = dataclasses.replace(node, settings=node.settings.model_copy(update={"quality": shadows}))
    node.receive(archive.history.current)
    main, shadow = node.complete()

    _run_priors(node, shadow)
    with node.sessions() as session:
        waiting = session.get(Job, shadow)
        assert waiting is not None and waiting.state is JobState.PRIORS and waiting.started_at is None
        assert session.get(PriorSearch, shadow) is None

    _run_priors(node, main)
    with node.sessions() as session:
        jobs = {j.id: j.state for j in session.scalars(select(Job).where(Job.id.in_([main, shadow])))}
        assert jobs == {main: JobState.QUEUED, shadow: JobState.QUEUED}
        rows = {job_id: [(r.study_instance_uid, r.report_text) for r in session.scalars(
            select(JobPrior).where(JobPrior.job_id == job_id).order_by(JobPrior.rank))] for job_id in (main, shadow)}
        assert len(rows[main]) == 2 and rows[shadow] == rows[main]
        searched = session.scalars(select(Event).where(Event.tag == "job:priors:searched")
                                   .order_by(Event.job_id == shadow)).all()
        assert [e.detail.get("shared_from") for e in searched] == [None, str(main)]
