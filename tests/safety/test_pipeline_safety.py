"""The safety gates with real peers: ``radassist run`` with a tiny model that writes a chest report,
dcmtk's storescu sending, storescp as the PACS, python-hl7's MLLP server as the RIS.

The shared mammogram and a generated head CT (no BodyPartExamined) get the chest text: both are
held, and nothing of them reaches the PACS or the RIS; the head CT is then released (delivered, with
the warning stated in the SR and an ORU NTE) and the mammogram discarded.  A chest film without
PatientID delivers its SR and holds its ORU (``hl7.no_patient_id``); one without accession number
or RIS order holds its ORU (``hl7.no_order``) until an admin sends it anyway.  One grep of the
log for a study's handle follows it from C-STORE to the RIS's ACK.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import hl7
import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from radassist.identifiers import study_handle
from tests.conftest import wait_until
from tests.dicom_factories import (
    SENTINEL_ACCESSION,
    SENTINEL_NAME,
    SENTINEL_PATIENT_ID,
    make_ct_study,
    write_study,
)
from tests.e2e.test_pipeline import Service, run_service, send, sr_content_text, tiny_model, write_config  # noqa: F401
from tests.peers import mllp_ris, storescp

pytestmark = pytest.mark.e2e

WARNING_START = "Automated check warning (anatomy): the report describes"


def head_ct(folder: Path) -> tuple[str, list[Path]]:
    """A generated head CT that says so only in its description (no BodyPartExamined)."""
    instances = make_ct_study(series_count=1, instances_per_series=3)
    for ds in instances:
        ds.StudyDescription = "CT HEAD W/O CONTRAST"
        del ds.BodyPartExamined
    return str(instances[0].StudyInstanceUID), write_study(instances, folder)


def chest_film(testdata: Path, folder: Path, **changes: str | None) -> tuple[str, Path]:
    """A copy of pydicom's chest radiograph as a new study, with header values changed (None: removed)."""
    ds = copy.deepcopy(pydicom.dcmread(testdata / "pydicom-data" / "RG1_J2KR.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cr.dcm"
    ds.save_as(path)
    return str(ds.StudyInstanceUID), path


def user_token(config: Path, name: str, role: str) -> str:
    base = [sys.executable, "-m", "radassist", "user"]
    subprocess.run([*base, "add", name, "--role", role, "--password-stdin", "--config", str(config)],
                   input="a-long-password\n", text=True, check=True, capture_output=True, timeout=60)
    return subprocess.run([*base, "token", name, "--config", str(config)], text=True, check=True,
                          capture_output=True, timeout=60).stdout.strip()


def post(service: Service, token: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(service.web + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def by_uid(service: Service) -> dict[str, dict[str, Any]]:
    return {s["study_instance_uid"]: s for s in service.studies()}


def test_held_drafts_and_held_orus_with_real_peers(tmp_path: Path, tiny_model: Path, testdata: Path,  # noqa: F811
                                                   run_service) -> None:  # noqa: F811
    head_uid, head_files = head_ct(tmp_path / "head")
    mammogram = testdata / "mammograms" / "1-282.dcm"
    mammo_uid = str(pydicom.dcmread(mammogram, stop_before_pixels=True).StudyInstanceUID)
    no_pid_uid, no_pid = chest_film(testdata, tmp_path / "nopid", PatientID=None)
    no_order_uid, no_order = chest_film(testdata, tmp_path / "noacc", AccessionNumber="")

    with storescp(tmp_path / "pacs") as pacs, mllp_ris() as ris:
        config = tmp_path / "radassist.toml"
        ports = write_config(config, data=tmp_path / "data", model=str(tiny_model), pacs=pacs, ris=ris)
        service = run_service(config, *ports)
        radiologist = user_token(config, "rad", "radiologist")
        send(service.dicom_port, *head_files)
        send(service.dicom_port, mammogram, no_pid, no_order)

        def settled() -> dict[str, dict[str, Any]] | None:
            studies = by_uid(service)
            held = [studies.get(u, {}).get("state") for u in (head_uid, mammo_uid)]
            outputs = [{d["channel"]: d["state"] for d in studies.get(u, {}).get("deliveries", ())}
                       for u in (no_pid_uid, no_order_uid)]
            ready = held == ["needs_review"] * 2 and outputs == [{"sr": "delivered", "hl7": "held"}] * 2
            return studies if ready else None

        studies = wait_until(settled, timeout=300, interval=1)
        # Held drafts never reach the PACS or the RIS; the held ORUs neither.
        sent_studies = sorted(str(pydicom.dcmread(p).StudyInstanceUID) for p in pacs.received())
        assert sent_studies == sorted([no_pid_uid, no_order_uid])
        assert ris.messages == []
        assert studies[head_uid]["warnings"] == ["anatomy"] and studies[mammo_uid]["warnings"] == ["anatomy"]
        review = service.get(f"/api/studies/{studies[mammo_uid]['id']}").json()["review"]
        assert review["held"] and "judged from the mammography prompt profile" in review["warnings"][0]["message"]
        head_review = service.get(f"/api/studies/{studies[head_uid]['id']}").json()["review"]
        assert "judged from the ct_head prompt profile" in head_review["warnings"][0]["message"]
        # The whole cause of each held ORU, in words, on the worklist.
        assert studies[no_pid_uid]["error_code"] == "hl7.no_patient_id"
        assert "the study has no PatientID" in studies[no_pid_uid]["error_message"]
        assert studies[no_order_uid]["error_code"] == "hl7.no_order"
        assert "no accession number" in studies[no_order_uid]["error_message"]

        # A radiologist releases the head CT and discards the mammogram.
        head_job, mammo_job = studies[head_uid]["job_id"], studies[mammo_uid]["job_id"]
        assert post(service, radiologist, f"/api/jobs/{head_job}/release",
                    {"reason": "the text is wrong but harmless; delivered with its warning"}).status_code == 200
        assert post(service, radiologist, f"/api/jobs/{mammo_job}/discard",
                    {"reason": "a chest report on a mammogram"}).status_code == 200
        wait_until(lambda: by_uid(service)[head_uid]["state"] == "done", timeout=120, interval=1)
        assert by_uid(service)[mammo_uid]["state"] == "discarded"
        head_sr = next(pydicom.dcmread(p) for p in pacs.received() if pydicom.dcmread(p).StudyInstanceUID == head_uid)
        text = sr_content_text(head_sr)
        assert text.index("NOT VERIFIED") < text.index(WARNING_START) < text.index("The lungs are clear")
        assert "/" not in head_sr.ManufacturerModelName and head_sr.ManufacturerModelName == tiny_model.name
        [head_oru] = [hl7.parse(m) for m in ris.messages]
        notes = head_oru.segments("NTE")
        assert len(notes) == 2 and str(notes[1][3]).startswith(WARNING_START)
        assert not any(str(pydicom.dcmread(p).StudyInstanceUID) == mammo_uid for p in pacs.received())
        tags = [e["tag"] for e in service.get(f"/api/studies/{studies[head_uid]['id']}").json()["events"]]
        steps = ["job:draft:completed", "job:draft:held", "job:draft:released", "job:sr:built", "delivery:sent",
                 "job:done"]
        assert [tags.index(t) for t in steps] == sorted(tags.index(t) for t in steps), tags

        # The admin sends the ORU without order anyway; the RIS gets it and the study is done.
        hl7_row = next(d for d in by_uid(service)[no_order_uid]["deliveries"] if d["channel"] == "hl7")
        assert post(service, service.token, f"/api/deliveries/{hl7_row['id']}/send-anyway").status_code == 200
        wait_until(lambda: by_uid(service)[no_order_uid]["state"] == "done", timeout=120, interval=1)
        assert len(ris.messages) == 2
        assert by_uid(service)[no_pid_uid]["state"] == "delivering"  # its ORU waits for an admin

    # One grep follows the released head CT from C-STORE to the RIS's ACK, in every process.
    log = service.log.read_text()
    trail = [line for line in log.splitlines() if f"study={study_handle(head_uid)}]" in line]  # the log context
    for step in ("instance of study", "study complete", "draft held for review", "outputs built",
                 "hl7 delivered to ris"):
        assert any(step in line for line in trail), (step, trail)
    for sentinel in (SENTINEL_NAME, SENTINEL_PATIENT_ID, SENTINEL_ACCESSION):
        assert sentinel not in log
