"""The whole path with real peers: dcmtk storescu sends studies to ``radassist run``, dcmtk storescp
plays the PACS, python-hl7's MLLP server plays the RIS, dciodvfy judges the SR.

Runs on the embedded defaults (SQLite + Celery's SQLAlchemy transport) and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hl7
import httpx
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import free_port, wait_for_port, wait_until
from tests.peers import Pacs, Ris, mllp_ris, storescp, storescu

pytestmark = pytest.mark.e2e

DCIODVFY = "/usr/bin/dciodvfy"
SENTINELS = ("SENTINEL^PATIENT", "SENTINEL-ID-4711", "19010101", "SENTINEL-ACC-9")


def make_ct_study(folder: Path, slices: int = 3) -> tuple[str, list[Path]]:
    """A small CT study with sentinel patient data, so the test can prove none of it is logged."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for index in range(slices):
        ds = pydicom.Dataset()
        ds.SOPClassUID = pydicom.uid.CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = SENTINELS[0], SENTINELS[1], SENTINELS[2]
        ds.PatientSex, ds.PatientAge = "F", "064Y"
        ds.AccessionNumber = SENTINELS[3]
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20261120", "101500", "1"
        ds.StudyDescription, ds.BodyPartExamined, ds.Modality = "CT CHEST", "CHEST", "CT"
        ds.ReferringPhysicianName = ""
        ds.SeriesNumber, ds.InstanceNumber = 2, index + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(index * 5)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 5.0
        ds.Rows = ds.Columns = 64
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 2000 + index * 10).tobytes()
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"ct{index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return study_uid, paths


@dataclass
class Service:
    web: str
    dicom_port: int
    log: Path
    process: subprocess.Popen[bytes]
    token: str = ""
    """An admin's API token (the web app needs a login), made by ``radassist user`` once it runs."""

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.web + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def studies(self) -> list[dict]:
        response = self.get("/api/studies")
        response.raise_for_status()
        return list(response.json()["items"])


def api_token(config: Path, env: dict[str, str], name: str = "e2e", password: str = "e2e-password") -> str:
    """Add an admin user to the service's database and return an API token for it (``radassist user``)."""
    base = [sys.executable, "-m", "radassist", "user"]
    subprocess.run([*base, "add", name, "--role", "admin", "--password-stdin", "--config", str(config)],
                   input=password + "\n", text=True, env=env, check=True, capture_output=True, timeout=60)
    return subprocess.run([*base, "token", name, "--config", str(config)], text=True, env=env, check=True,
                          capture_output=True, timeout=60).stdout.strip()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radassist_devtools.tiny_models import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-gemma3") / "model", arch="gemma3")


def write_config(path: Path, *, data: Path, model: str, pacs: Pacs | None, ris: Ris | None,
                 database_url: str = "", broker_url: str = "") -> tuple[int, int]:
    dicom_port, web_port = free_port(), free_port()
    lines = [
        "[dicom]", 'ae_title = "RADASSIST"', 'host = "127.0.0.1"', f"port = {dicom_port}",
        "study_quiet_seconds = 2", "[[dicom.allowed_callers]]", 'ae_title = "MODALITY"', 'network = "127.0.0.1/32"',
        "[storage]", f'path = "{data}"',
        "[database]", f'url = "{database_url}"',
        "[queue]", f'broker_url = "{broker_url}"', "sweep_interval_seconds = 0.5",
        "[model]", f'name = "{model}"', 'device = "cpu"', "max_new_tokens = 64", "image_size = 64",
        "local_files_only = true",
        "[delivery]", "retry_initial_seconds = 0.5", "retry_max_seconds = 2",
        "[web]", 'host = "127.0.0.1"', f"port = {web_port}",
    ]
    if ris is not None:
        lines += ["[hl7]", 'host = "127.0.0.1"', f"port = {ris.port}", "ack_timeout_seconds = 5"]
    if pacs is not None:
        lines += ["[[destinations]]", 'name = "pacs"', f'ae_title = "{pacs.ae_title}"', 'host = "127.0.0.1"',
                  f"port = {pacs.port}"]
    path.write_text("\n".join(lines) + "\n")
    return dicom_port, web_port


@pytest.fixture
def run_service(tmp_path: Path) -> Iterator:
    started: list[Service] = []

    def start(config: Path, dicom_port: int, web_port: int) -> Service:
        log = tmp_path / "service.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
        env["HF_HUB_OFFLINE"] = "1"
        process = subprocess.Popen(
            [sys.executable, "-m", "radassist", "run", "--config", str(config)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
        )
        service = Service(f"http://127.0.0.1:{web_port}", dicom_port, log, process)
        started.append(service)
        wait_for_port(dicom_port, timeout=60)
        wait_for_port(web_port, timeout=60)
        service.token = api_token(config, env)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGINT)
            try:
                service.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                service.process.kill()
        assert service.process.returncode == 0, service.log.read_text()[-4000:]


def send(port: int, *files: Path) -> None:
    result = storescu(port, *files)
    assert result.returncode == 0, result.stderr


def sr_content_text(ds: pydicom.Dataset) -> str:
    texts: list[str] = []

    def walk(items: pydicom.Sequence) -> None:
        for item in items:
            name = item.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in item else ""
            value = item.get("TextValue", "")
            texts.append(f"{name}: {value}")
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(ds.ContentSequence)
    return "\n".join(texts)


def ae_then_aa(message: hl7.Message, seen: int) -> str:
    """The RIS is busy the first time it sees a message and accepts the repeat."""
    return "AE" if seen == 1 else "AA"


BACKENDS = {
    "embedded": ("", ""),
    "postgresql-rabbitmq": (None, None),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_study_comes_back_as_sr_and_oru(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                                        tiny_model: Path, testdata: Path, run_service) -> None:
    database_url, broker_url = BACKENDS[backend]
    if database_url is None:
        database_url = request.getfixturevalue("postgres_url")
    if broker_url is None:
        broker_url = request.getfixturevalue("rabbitmq_url")
    ct_uid, ct_files = make_ct_study(tmp_path / "ct")
    cr_file = testdata / "pydicom-data" / "RG1_J2KR.dcm"
    cr_uid = str(pydicom.dcmread(cr_file, stop_before_pixels=True).StudyInstanceUID)

    with storescp(tmp_path / "pacs") as pacs, mllp_ris(ae_then_aa) as ris:
        config = tmp_path / "radassist.toml"
        ports = write_config(config, data=tmp_path / "data", model=str(tiny_model), pacs=pacs, ris=ris,
                             database_url=database_url, broker_url=broker_url)
        service = run_service(config, *ports)
        send(service.dicom_port, cr_file)
        send(service.dicom_port, *ct_files)
        send(service.dicom_port, ct_files[0])  # a re-sent instance changes nothing

        def all_done() -> list[dict] | None:
            studies = service.studies()
            states = {s["state"] for s in studies}
            assert "failed" not in states, studies
            return studies if len(studies) == 2 and states == {"done"} else None

        studies = wait_until(all_done, timeout=240, interval=1)

        # One SR per study, into the same study, valid, with both sections.
        srs = [pydicom.dcmread(p) for p in pacs.received()]
        assert sorted(str(ds.StudyInstanceUID) for ds in srs) == sorted([cr_uid, ct_uid])
        for path, ds in zip(pacs.received(), srs, strict=True):
            assert ds.SeriesDescription.startswith("AI DRAFT")
            assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == ("PARTIAL", "UNVERIFIED", "PRELIMINARY")
            text = sr_content_text(ds)
            assert "Findings" in text and "Impression" in text
            assert "No acute cardiopulmonary abnormality" in text  # the tiny model's greedy output
            assert "NOT VERIFIED" in text.upper()
            check = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
            errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
            assert errors == [], errors
        ct_sr = next(ds for ds in srs if ds.StudyInstanceUID == ct_uid)
        assert str(ct_sr.PatientName) == SENTINELS[0]
        evidence = ct_sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert {i.ReferencedSOPInstanceUID for i in evidence.ReferencedSOPSequence} == {
            str(pydicom.dcmread(p).SOPInstanceUID) for p in ct_files
        }

        # One ORU per study (each sent twice: the RIS answered AE, then AA to the same MSH-10).
        orus = [hl7.parse(m) for m in ris.messages]
        control_ids = [str(m.segment("MSH")[10]) for m in orus]
        assert len(set(control_ids)) == 2 and len(orus) == 4
        assert sorted(ris.acks) == ["AA", "AA", "AE", "AE"]
        ct_oru = next(m for m in orus if SENTINELS[3] in str(m.segment("OBR")))
        assert str(ct_oru.segment("OBR")[25]) == "R"
        assert str(ct_oru.segment("MSH")[9]).startswith("ORU^R01")

        # What a reviewer reads: the SR as dcmtk renders it, and the ORU as sent (kept beside the test).
        ct_sr_path = next(p for p, ds in zip(pacs.received(), srs, strict=True) if ds.StudyInstanceUID == ct_uid)
        dump = subprocess.run(["/usr/bin/dsrdump", "-Ec", "+Pl", "+Pc", "+Pt", str(ct_sr_path)], capture_output=True, text=True)
        assert dump.returncode == 0 and "AI DRAFT" in dump.stdout.upper(), dump.stderr
        (tmp_path / "ct-sr.dsrdump.txt").write_text(dump.stdout)
        (tmp_path / "ct-oru.er7").write_text(str(ct_oru).replace("\r", "\n"))

        # The worklist shows each study done, with both deliveries delivered.
        for study in studies:
            assert study["state"] == "done"
            assert sorted((d["channel"], d["state"]) for d in study["deliveries"]) == [
                ("hl7", "delivered"), ("sr", "delivered")
            ]
            hl7_delivery = next(d for d in study["deliveries"] if d["channel"] == "hl7")
            assert hl7_delivery["attempts"] == 2
        assert service.get("/").status_code == 200

    # No patient name, ID, birth date or accession number in any log line of any process.
    log_text = service.log.read_text()
    for sentinel in SENTINELS:
        assert sentinel not in log_text
    assert "draft stored" in log_text


def test_model_that_cannot_load_fails_each_job_with_its_reason(tmp_path: Path, testdata: Path, run_service) -> None:
    with storescp(tmp_path / "pacs") as pacs:
        config = tmp_path / "radassist.toml"
        ports = write_config(config, data=tmp_path / "data", model=str(tmp_path / "no-such-model"), pacs=pacs, ris=None)
        service = run_service(config, *ports)
        send(service.dicom_port, testdata / "pydicom-data" / "RG1_J2KI.dcm")
        study = wait_until(lambda: next((s for s in service.studies() if s["state"] == "failed"), None), timeout=120)
        assert study["error_code"] == "model.unavailable"
        assert study["error_message"]
        assert pacs.received() == []  # nothing pretends to be a model
        page = service.get("/").text
        assert "model.unavailable" in page
