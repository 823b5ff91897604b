"""Destinations of every kind against real peers: Orthanc (REST, DICOM, DICOMweb) and dcmtk storescp.

Orthanc is Debian's, started per test on free loopback ports with its DICOMweb plugin.  The outbox
test runs the delivery task on both databases: a destination that is down gets a pending delivery
with its error, and the same SOP Instance UID arrives once it comes up.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import (
    DicomDestination,
    DicomwebDestination,
    OrthancDestination,
    Settings,
    load_settings,
)
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Delivery, Draft, Instance, Job, Series, Study
from radassist.errors import PermanentFailure, TransientFailure
from radassist.outputs.inputs import read_headers
from radassist.outputs.outbox import build_job_outputs
from radassist.pacs.dicomweb import stow
from radassist.pacs.orthanc import store_orthanc
from radassist.pacs.targets import send_sr_file, test_connection
from radassist.sr import build_draft_sr, sr_uids_for_job
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState
from radassist.store.outputs import OutputStore
from tests.conftest import free_port
from tests.dicom_factories import make_ct_study, write_study
from tests.peers import OrthancServer, orthanc, start_orthanc, stop_orthanc, storescp
from workers.app import make_celery
from workers.base import reset_sessionmaker

DCIODVFY = "/usr/bin/dciodvfy"
IMPRESSION = "No acute cardiopulmonary abnormality."


def _dciodvfy_errors(path: Path) -> list[str]:
    proc = subprocess.run([DCIODVFY, str(path)], check=False, capture_output=True, text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


def _sr_file(study: list[pydicom.Dataset], folder: Path, sr_class: str = "enhanced") -> Path:
    series_uid, sop_uid = sr_uids_for_job(uuid.uuid4(), sr_class)
    sr = build_draft_sr(
        study,
        findings="Lungs are clear.",
        impression=IMPRESSION,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        model_name="tiny-test-model",
        model_revision="1",
        software_version="0.1.0",
        sr_class=sr_class,  # type: ignore[arg-type]
        key_image_uids=[study[0].SOPInstanceUID],
    )
    path = folder / f"sr-{sr_class}.dcm"
    folder.mkdir(parents=True, exist_ok=True)
    sr.save_as(path, enforce_file_format=True)
    assert _dciodvfy_errors(path) == []
    return path


def _upload_study(server: OrthancServer, paths: list[Path]) -> None:
    for path in paths:
        response = httpx.post(f"{server.url}/instances", content=path.read_bytes(), timeout=30)
        response.raise_for_status()


def _study_series(server: OrthancServer, study_uid: str) -> dict[str, list[str]]:
    """Orthanc's view of a study: Modality -> SOP Instance UIDs of that study's instances."""
    found = httpx.post(f"{server.url}/tools/lookup", content=study_uid, timeout=30).json()
    study_ids = [item["ID"] for item in found if item["Type"] == "Study"]
    assert len(study_ids) == 1, found
    out: dict[str, list[str]] = {}
    for instance in httpx.get(f"{server.url}/studies/{study_ids[0]}/instances", params={"expand": "1"}, timeout=30).json():
        series = httpx.get(f"{server.url}/series/{instance['ParentSeries']}", timeout=30).json()
        out.setdefault(series["MainDicomTags"]["Modality"], []).append(instance["MainDicomTags"]["SOPInstanceUID"])
    return out


@pytest.fixture(scope="module")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def study(tmp_path: Path) -> tuple[list[pydicom.Dataset], list[Path]]:
    instances = make_ct_study(series_count=1, instances_per_series=2)
    paths = write_study(instances, tmp_path / "study")
    return read_headers(paths), paths


def _orthanc_dest(server: OrthancServer | None = None, port: int | None = None) -> OrthancDestination:
    url = server.url if server is not None else f"http://127.0.0.1:{port}"
    return OrthancDestination(kind="orthanc", name="orthanc", url=url, timeout_seconds=10)


def _dicomweb_dest(server: OrthancServer | None = None, port: int | None = None, root: str = "/dicom-web") -> DicomwebDestination:
    url = (server.url if server is not None else f"http://127.0.0.1:{port}") + root
    return DicomwebDestination(kind="dicomweb", name="web", url=url, timeout_seconds=10)


def test_destination_kinds_load_from_toml_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[destinations]]\nname = "old"\nae_title = "OLDPACS"\nhost = "h"\nport = 104\nsr_class = "basic"\n'
        'tls = true\n'
        '[[destinations]]\nkind = "orthanc"\nname = "o"\nurl = "http://o:8042"\nusername = "u"\npassword = "s3cret"\n'
        '[[destinations]]\nkind = "dicomweb"\nname = "w"\nurl = "https://w/dicom-web"\nbearer_token = "t0ken"\n',
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    kinds = [(type(d).__name__, d.sr_class) for d in settings.destinations]
    assert kinds == [("DicomDestination", "basic"), ("OrthancDestination", "enhanced"), ("DicomwebDestination", "enhanced")]
    assert "s3cret" not in repr(settings) and "t0ken" not in repr(settings)
    with pytest.raises(Exception, match="sr_class"):
        load_settings(environ={"RADASSIST_DESTINATIONS": '[{"kind": "orthanc", "name": "o", "url": "u", "sr_class": "x"}]'})


@pytest.mark.parametrize("sr_class", ["enhanced", "comprehensive", "basic"])
def test_orthanc_rest_accepts_each_sr_class_in_the_same_study(
    orthanc_server: OrthancServer, study: tuple[list[pydicom.Dataset], list[Path]], tmp_path: Path, sr_class: str
) -> None:
    headers, paths = study
    _upload_study(orthanc_server, paths)
    sr_path = _sr_file(headers, tmp_path, sr_class)
    dest = _orthanc_dest(orthanc_server)
    test_connection(dest)
    store_orthanc(sr_path, dest)
    # A retry sends the same object again: Orthanc answers "AlreadyStored", which is a success.
    store_orthanc(sr_path, dest)
    listed = _study_series(orthanc_server, headers[0].StudyInstanceUID)
    assert listed["SR"] == [pydicom.dcmread(sr_path).SOPInstanceUID]
    assert sorted(listed["CT"]) == sorted(ds.SOPInstanceUID for ds in headers)
    stored = httpx.get(f"{orthanc_server.url}/instances/{_instance_id(orthanc_server, sr_path)}/file", timeout=30)
    assert pydicom.dcmread(io.BytesIO(stored.content)).SOPClassUID == pydicom.dcmread(sr_path).SOPClassUID


def _instance_id(server: OrthancServer, sr_path: Path) -> str:
    uid = pydicom.dcmread(sr_path).SOPInstanceUID
    found = httpx.post(f"{server.url}/tools/lookup", content=uid, timeout=30).json()
    return str(next(item["ID"] for item in found if item["Type"] == "Instance"))


def test_dicomweb_stow_and_cstore_reach_orthanc(
    orthanc_server: OrthancServer, study: tuple[list[pydicom.Dataset], list[Path]], tmp_path: Path
) -> None:
    headers, paths = study
    _upload_study(orthanc_server, paths)
    web = _dicomweb_dest(orthanc_server)
    test_connection(web)
    stow(_sr_file(headers, tmp_path / "web"), web)

    dicom = DicomDestination(kind="dicom", name="pacs", ae_title=orthanc_server.ae_title, host="127.0.0.1",
                             port=orthanc_server.dicom_port, sr_class="comprehensive")
    test_connection(dicom, calling_ae_title="RADASSIST")
    send_sr_file(_sr_file(headers, tmp_path / "dimse", "comprehensive"), dicom, calling_ae_title="RADASSIST")

    listed = _study_series(orthanc_server, headers[0].StudyInstanceUID)
    assert len(listed["SR"]) == 2
    # QIDO-RS through the same DICOMweb root lists both SRs in the source study.
    qido = httpx.get(f"{web.url}/studies/{headers[0].StudyInstanceUID}/series", params={"Modality": "SR"},
                     headers={"Accept": "application/dicom+json"}, timeout=30)
    assert qido.status_code == 200
    assert {series["0020000E"]["Value"][0] for series in qido.json()} == {
        pydicom.dcmread(tmp_path / "web" / "sr-enhanced.dcm").SeriesInstanceUID,
        pydicom.dcmread(tmp_path / "dimse" / "sr-comprehensive.dcm").SeriesInstanceUID,
    }

def test_http_errors_are_classified_with_stable_codes(
    orthanc_server: OrthancServer, study: tuple[list[pydicom.Dataset], list[Path]], tmp_path: Path
) -> None:
    headers, _ = study
    sr_path = _sr_file(headers, tmp_path)
    down = free_port()
    with pytest.raises(TransientFailure) as excinfo:
        stow(sr_path, _dicomweb_dest(port=down))
    assert excinfo.value.code == "dicomweb.unreachable"
    with pytest.raises(TransientFailure) as excinfo:
        test_connection(_orthanc_dest(port=down))
    assert excinfo.value.code == "orthanc.unreachable"
    with pytest.raises(TransientFailure) as excinfo:
        test_connection(DicomDestination(kind="dicom", name="p", ae_title="P", host="127.0.0.1", port=down))
    assert excinfo.value.code == "pacs.unreachable"
    # A wrong DICOMweb root is a configuration error: 404, never retried.
    with pytest.raises(PermanentFailure) as excinfo:
        stow(sr_path, _dicomweb_dest(orthanc_server, root="/no-such-root"))
    assert excinfo.value.code == "dicomweb.http.404"
    # Orthanc refuses a file that is not DICOM: 400, never retried.
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all" * 20)
    with pytest.raises(PermanentFailure) as excinfo:
        store_orthanc(junk, _orthanc_dest(orthanc_server))
    assert excinfo.value.code == "orthanc.rejected"
    assert str(headers[0].PatientName) not in str(excinfo.value)


# --- the outbox, end to end through the delivery task -------------------------------------------


@pytest.fixture
def app(migrated_settings: Settings) -> Iterator[Celery]:
    reset_sessionmaker()
    yield make_celery(migrated_settings)
    reset_sessionmaker()


@pytest.fixture
def session(migrated_settings: Settings) -> Iterator[Session]:
    maker = make_sessionmaker(migrated_settings)
    with maker() as session:
        yield session
    maker.kw["bind"].dispose()


def _stored_study(session: Session, settings: Settings, paths: list[Path]) -> Study:
    """The study of ``paths`` as the listener would have stored it (files in the store, instance rows)."""
    headers = read_headers(paths)
    study = session.scalars(select(Study).where(Study.study_instance_uid == headers[0].StudyInstanceUID)).first()
    if study is not None:
        return study
    study = Study(study_instance_uid=headers[0].StudyInstanceUID, state=StudyState.COMPLETE)
    session.add(study)
    session.flush()
    series = Series(study_id=study.id, series_instance_uid=str(headers[0].SeriesInstanceUID))
    session.add(series)
    session.flush()
    folder = settings.storage.instances_dir / study.id.hex
    folder.mkdir(parents=True, exist_ok=True)
    for path, ds in zip(paths, headers, strict=True):
        (folder / path.name).write_bytes(path.read_bytes())
        session.add(Instance(series_id=series.id, study_id=study.id, sop_instance_uid=str(ds.SOPInstanceUID),
                             sop_class_uid=str(ds.SOPClassUID), transfer_syntax_uid="1.2.840.10008.1.2.1",
                             path=f"{study.id.hex}/{path.name}", size_bytes=path.stat().st_size))
    return study


def _drafted_job(session: Session, settings: Settings, study: tuple[list[pydicom.Dataset], list[Path]],
                 **generation: Any) -> Job:
    """A job of ``study`` whose draft is committed: what the build task starts from."""
    headers, paths = study
    stored = _stored_study(session, settings, paths)
    job = Job(study_id=stored.id, state=JobState.DRAFTED, model_name="tiny-test-model", drafted_at=utcnow())
    session.add(job)
    session.flush()
    session.add(Draft(job_id=job.id, findings="Lungs are clear.\nNo effusion.", impression=IMPRESSION, raw_text="",
                      model_name="tiny-test-model", model_revision="1", prompt="", prompt_version="t",
                      generation={"indication": "Cough.", "source_sop_instance_uids": [headers[0].SOPInstanceUID],
                                  **generation}))
    session.commit()
    return job


def _build(session: Session, settings: Settings, job: Job) -> list[Delivery]:
    """Run the build stage for ``job`` and commit; its delivery rows."""
    assert build_job_outputs(session, job.id, settings, OutputStore(settings.storage.outputs_dir), utcnow()) is not None
    session.commit()
    session.expire_all()
    return list(session.scalars(select(Delivery).where(Delivery.job_id == job.id).order_by(Delivery.destination)))


def test_outbox_delivers_after_the_destination_comes_up_with_the_same_uid(
    app: Celery, session: Session, migrated_settings: Settings, study: tuple[list[pydicom.Dataset], list[Path]],
    tmp_path: Path,
) -> None:
    from workers.tasks.deliver import deliver

    headers, paths = study
    http_port, dicom_port = free_port(), free_port()
    with storescp(tmp_path / "oldpacs", ae_title="OLDPACS") as old_pacs:
        settings = migrated_settings.model_copy(update={"destinations": (
            _orthanc_dest(port=http_port),
            _dicomweb_dest(port=http_port),
            DicomDestination(kind="dicom", name="old", ae_title="OLDPACS", host="127.0.0.1", port=old_pacs.port,
                             sr_class="basic"),
        )})
        make_celery(settings)
        outputs = OutputStore(settings.storage.outputs_dir)
        job = _drafted_job(session, settings, study, labels=[["36118008", "SCT", "Pneumothorax"]])
        deliveries = _build(session, settings, job)
        by_dest = {d.destination: d for d in deliveries}
        assert by_dest["orthanc"].payload_path == by_dest["web"].payload_path != by_dest["old"].payload_path
        enhanced = pydicom.dcmread(outputs.path(by_dest["orthanc"].payload_path))
        basic = pydicom.dcmread(outputs.path(by_dest["old"].payload_path))
        assert (enhanced.SOPClassUID, basic.SOPClassUID) == (pydicom.uid.EnhancedSRStorage, pydicom.uid.BasicTextSRStorage)
        assert enhanced.SOPInstanceUID != basic.SOPInstanceUID
        assert enhanced.SeriesInstanceUID == basic.SeriesInstanceUID
        assert job.sr_sop_instance_uid == enhanced.SOPInstanceUID
        for payload in (by_dest["orthanc"].payload_path, by_dest["old"].payload_path):
            assert _dciodvfy_errors(outputs.path(payload)) == []

        # Orthanc is down: both of its deliveries stay pending, with the error; storescp gets its Basic SR.
        for delivery in deliveries:
            deliver.apply(args=(str(delivery.id),)).get()
        session.expire_all()
        states = {d.destination: (d.state, d.last_error_code, d.attempts) for d in session.scalars(
            select(Delivery).where(Delivery.job_id == job.id))}
        assert states["orthanc"] == (DeliveryState.PENDING, "orthanc.unreachable", 1)
        assert states["web"] == (DeliveryState.PENDING, "dicomweb.unreachable", 1)
        assert states["old"] == (DeliveryState.DELIVERED, None, 1)
        received = old_pacs.received()
        assert [pydicom.dcmread(p).SOPInstanceUID for p in received] == [basic.SOPInstanceUID]
        assert session.get(Job, job.id).state is JobState.DELIVERING  # type: ignore[union-attr]

    # Orthanc comes up on the configured ports; the retries (made due now) deliver the stored file.
    server = start_orthanc(tmp_path / "orthanc", http_port=http_port, dicom_port=dicom_port)
    try:
        _upload_study(server, paths)
        pending = session.scalars(select(Delivery).where(Delivery.job_id == job.id,
                                                         Delivery.state == DeliveryState.PENDING)).all()
        for delivery in pending:
            delivery.next_attempt_at = utcnow()
        session.commit()
        for delivery in pending:
            deliver.apply(args=(str(delivery.id),)).get()
        session.expire_all()
        rows = session.scalars(select(Delivery).where(Delivery.job_id == job.id)).all()
        assert {d.destination: (d.state, d.attempts) for d in rows} == {
            "orthanc": (DeliveryState.DELIVERED, 2), "web": (DeliveryState.DELIVERED, 2),
            "old": (DeliveryState.DELIVERED, 1)}
        assert session.get(Job, job.id).state is JobState.DONE  # type: ignore[union-attr]
        listed = _study_series(server, headers[0].StudyInstanceUID)
        assert listed["SR"] == [enhanced.SOPInstanceUID]
    finally:
        stop_orthanc(server)


def test_a_redraft_references_the_earlier_sr_as_predecessor(
    session: Session, migrated_settings: Settings, study: tuple[list[pydicom.Dataset], list[Path]]
) -> None:
    settings = migrated_settings.model_copy(update={"destinations": (
        DicomDestination(kind="dicom", name="old", ae_title="OLDPACS", host="127.0.0.1", port=104, sr_class="basic"),
        _orthanc_dest(port=8042),
    )})
    outputs = OutputStore(settings.storage.outputs_dir)
    first = _drafted_job(session, settings, study)
    first.created_at = utcnow() - dt.timedelta(minutes=5)
    session.commit()
    _build(session, settings, first)
    # Another job on the same study that re-drafts nothing (another pipeline's model): no predecessor.
    other = _drafted_job(session, settings, study)
    unrelated = _build(session, settings, other)
    assert all("PredecessorDocumentsSequence" not in pydicom.dcmread(outputs.path(d.payload_path or ""))
               for d in unrelated)
    second = _drafted_job(session, settings, study)
    second.supersedes_job_id = first.id
    session.commit()
    deliveries = _build(session, settings, second)

    first_uids = {cls: sr_uids_for_job(first.id, cls)[1] for cls in ("enhanced", "basic")}
    for delivery in deliveries:
        sr = pydicom.dcmread(outputs.path(delivery.payload_path or ""))
        cls = "basic" if sr.SOPClassUID == pydicom.uid.BasicTextSRStorage else "enhanced"
        referenced = [ref.ReferencedSOPInstanceUID for item in sr.PredecessorDocumentsSequence
                      for series in item.ReferencedSeriesSequence for ref in series.ReferencedSOPSequence]
        assert referenced == [first_uids[cls]]
        assert sr.SOPInstanceUID == sr_uids_for_job(second.id, cls)[1]
        assert _dciodvfy_errors(outputs.path(delivery.payload_path or "")) == []
    assert {d.channel for d in deliveries} == {DeliveryChannel.SR}


def test_cli_tests_each_destination(orthanc_server: OrthancServer, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from radassist.cli import main

    config = tmp_path / "config.toml"
    down = free_port()
    config.write_text(
        f'[[destinations]]\nkind = "orthanc"\nname = "up"\nurl = "{orthanc_server.url}"\n'
        f'[[destinations]]\nkind = "dicomweb"\nname = "web"\nurl = "{orthanc_server.dicomweb_url}"\n'
        f'[[destinations]]\nname = "pacs"\nae_title = "{orthanc_server.ae_title}"\nhost = "127.0.0.1"\n'
        f"port = {orthanc_server.dicom_port}\n"
        f'[[destinations]]\nkind = "dicomweb"\nname = "down"\nurl = "http://127.0.0.1:{down}/dicom-web"\n',
        encoding="utf-8",
    )
    assert main(["test-destinations", "--config", str(config), "up", "web", "pacs"]) == 0
    assert main(["test-destinations", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "up (orthanc): ok" in out and "web (dicomweb): ok" in out and "pacs (dicom): ok" in out
    assert "down (dicomweb): FAILED [dicomweb.unreachable]" in out


def test_a_pipeline_sends_only_to_its_own_destinations(
    session: Session, migrated_settings: Settings, study: tuple[list[pydicom.Dataset], list[Path]]
) -> None:
    from radassist.config import PipelineSettings

    settings = migrated_settings.model_copy(update={
        "destinations": (
            DicomDestination(kind="dicom", name="old", ae_title="OLDPACS", host="127.0.0.1", port=104, sr_class="basic"),
            _orthanc_dest(port=8042),
        ),
        "pipelines": (PipelineSettings(ae_title="CHESTAI", destinations=("old",)),),
    })
    outputs = OutputStore(settings.storage.outputs_dir)
    job = _drafted_job(session, settings, study)
    session.get(Study, job.study_id).called_ae_title = "CHESTAI"  # type: ignore[union-attr]
    session.commit()
    deliveries = _build(session, settings, job)
    assert [(d.channel, d.destination) for d in deliveries] == [(DeliveryChannel.SR, "old")]
    # Only the class that pipeline's destinations need is built; the job's SR is that one.
    assert pydicom.dcmread(outputs.path(job.sr_path or "")).SOPClassUID == pydicom.uid.BasicTextSRStorage
