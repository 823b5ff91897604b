"""Priors end to end: ``radassist run`` with Orthanc as the hospital's archive (DICOM Q/R SCP, C-MOVE to
our own listener), dcmtk storescp as the PACS, python-hl7's MLLP server as the RIS, dciodvfy as judge.

One service, three studies: the patient's new chest radiograph is drafted against the prior in the
archive (its report in the prompt, the comparison named in the SR and the ORU); another patient's,
with no prior, is drafted saying none was found; then the archive goes down, and the patient's next
study is drafted at once saying the prior source could not be reached.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import hl7
import httpx
import pydicom
import pytest

from tests.conftest import free_port, wait_until
from tests.dicom_factories import SENTINEL_ACCESSION, SENTINEL_BIRTH_DATE, SENTINEL_NAME, SENTINEL_PATIENT_ID
from tests.e2e import test_pipeline as pipeline
from tests.e2e.test_pipeline import DCIODVFY, Service, send
from tests.peers import Pacs, Ris, mllp_ris, storescp
from tests.priors.conftest import _start_orthanc
from tests.priors.factories import REPORT_A_IMPRESSION, make_cxr_study, make_history, part10

pytestmark = pytest.mark.e2e
run_service = pipeline.run_service  # the fixture that starts ``radassist run`` and stops it cleanly

REPORT = "Findings: Compared with the prior study, the lungs remain clear. Impression: No interval change."


@pytest.fixture(scope="module")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radassist_devtools.tiny_models import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("scripted-e2e") / "model", arch="gemma3", report=REPORT)


def _config(path: Path, *, data: Path, model: Path, dicom_port: int, web_port: int, archive_port: int,
            pacs: Pacs, ris: Ris) -> None:
    lines = [
        "[dicom]", 'ae_title = "RADASSIST"', 'host = "127.0.0.1"', f"port = {dicom_port}", "study_quiet_seconds = 2",
        "[[dicom.allowed_callers]]", 'ae_title = "MODALITY"', 'network = "127.0.0.1/32"',
        "[[dicom.allowed_callers]]", 'ae_title = "ARCHIVE"', 'network = "127.0.0.1/32"',  # C-MOVE sub-operations
        "[storage]", f'path = "{data}"',
        "[queue]", "sweep_interval_seconds = 0.5",
        "[model]", f'name = "{model}"', 'device = "cpu"', "max_new_tokens = 64", "image_size = 64",
        "local_files_only = true",
        "[delivery]", "retry_initial_seconds = 0.5", "retry_max_seconds = 2",
        "[web]", 'host = "127.0.0.1"', f"port = {web_port}",
        "[hl7]", 'host = "127.0.0.1"', f"port = {ris.port}", "ack_timeout_seconds = 5",
        "[[destinations]]", 'name = "pacs"', f'ae_title = "{pacs.ae_title}"', 'host = "127.0.0.1"', f"port = {pacs.port}",
        "[[prior_sources]]", 'name = "archive"', 'ae_title = "ARCHIVE"', 'host = "127.0.0.1"', f"port = {archive_port}",
        'retrieve = "move"', "timeout_seconds = 5",
        "[priors]", "time_limit_seconds = 20",
        "[[priors.rules]]", 'profile = "cxr"', 'views = ["PA", "AP"]', "most_recent = 1",
    ]
    path.write_text("\n".join(lines) + "\n")


def _files(folder: Path, datasets: list[pydicom.Dataset]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, ds in enumerate(datasets):
        path = folder / f"{n}.dcm"
        path.write_bytes(part10(ds))
        paths.append(path)
    return paths


def _texts(ds: pydicom.Dataset, code: str) -> list[str]:
    section = next(i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == code)
    return [i.TextValue for i in section.ContentSequence if i.ValueType == "TEXT"]


def _done(service: Service, count: int) -> Callable[[], list[dict] | None]:
    def check() -> list[dict] | None:
        studies = service.studies()
        assert not any(s["state"] == "failed" for s in studies), studies
        return studies if len(studies) == count and all(s["state"] == "done" for s in studies) else None

    return check


def _sr_of(pacs: Pacs, study_uid: str) -> tuple[Path, pydicom.Dataset]:
    for path in pacs.received():
        ds = pydicom.dcmread(path)
        if str(ds.StudyInstanceUID) == study_uid:
            return path, ds
    raise AssertionError("no SR for the study")


def _oru_comparison(ris: Ris, study_uid: str) -> list[str]:
    for text in ris.messages:
        message = hl7.parse(text)
        if any(str(obx[5]) == study_uid for obx in message.segments("OBX")):
            return [str(obx[5]) for obx in message.segments("OBX") if str(obx[3][0][0]) == "55114-3"]
    raise AssertionError("no ORU for the study")


def _screenshot(service: Service, study_id: str) -> None:
    """The study page's Comparison in headless Chromium, kept as tests/artifacts/priors-comparison.png
    (skipped where Debian's chromium or Playwright is missing)."""
    from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        return
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            page.goto(service.web + "/login")
            page.fill("input[name=username]", "e2e")
            page.fill("input[name=password]", "e2e-password")
            page.click("button[type=submit]")
            page.goto(f"{service.web}/studies/{study_id}")
            sync_api.expect(page.locator("h2", has_text="Comparison")).to_be_visible()
            sync_api.expect(page.locator(".prior-report")).to_contain_text(REPORT_A_IMPRESSION)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.locator(".comparison").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "priors-comparison.png"), full_page=True)
        finally:
            browser.close()


def test_drafts_compare_with_the_prior_in_the_archive_and_say_when_there_is_none(
    tmp_path: Path, scripted_model: Path, run_service
) -> None:
    history = make_history()
    current_uid = str(history.current[0].StudyInstanceUID)
    other = make_cxr_study(dt.datetime(2024, 3, 20, 11, 0), patient_id="NO-PRIORS-E2E")
    later = make_cxr_study(dt.datetime(2024, 6, 1, 9, 0))
    dicom_port, web_port = free_port(), free_port()
    with storescp(tmp_path / "pacs") as pacs, mllp_ris() as ris:
        (tmp_path / "archive").mkdir()
        orthanc, http_port, archive_port = _start_orthanc(tmp_path / "archive", dicom_port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client:
                for ds in history.all_instances():
                    client.post("/instances", content=part10(ds)).raise_for_status()
            config = tmp_path / "radassist.toml"
            _config(config, data=tmp_path / "data", model=scripted_model, dicom_port=dicom_port, web_port=web_port,
                    archive_port=archive_port, pacs=pacs, ris=ris)
            service = run_service(config, dicom_port, web_port)
            send(service.dicom_port, *_files(tmp_path / "current", history.current))
            send(service.dicom_port, *_files(tmp_path / "other", other))
            studies = wait_until(_done(service, 2), timeout=240, interval=1)
        finally:
            orthanc.terminate()
            orthanc.wait(timeout=20)

        # The archive is down now: the patient's next study is drafted all the same, saying why.
        send(service.dicom_port, *_files(tmp_path / "later", later))
        studies = wait_until(_done(service, 3), timeout=240, interval=1)

        # The patient's study, against prior A (the newest relevant one): its report in the prompt.
        by_uid = {s["study_instance_uid"]: s for s in studies}
        view = service.get(f"/api/studies/{by_uid[current_uid]['id']}").json()
        assert REPORT_A_IMPRESSION in view["prompt"] and "of 2023-01-10" in view["prompt"]
        comparison = view["comparison"]
        assert comparison["reason_code"] is None and len(comparison["priors"]) == 1
        prior = comparison["priors"][0]
        assert prior["study_instance_uid"] == str(history.prior_a[0].StudyInstanceUID)
        assert prior["report_origin"] == "sr" and prior["images_fetched"] == 1  # the PA, moved to our listener
        path, sr = _sr_of(pacs, current_uid)
        said = ["Comparison: XR CHEST 2 VIEWS (DX) of 2023-01-10."]
        assert _texts(sr, "55114-3") == said
        assert {i.StudyInstanceUID for i in sr.PertinentOtherEvidenceSequence} == {str(history.prior_a[0].StudyInstanceUID)}
        moved = {r.ReferencedSOPInstanceUID for i in sr.PertinentOtherEvidenceSequence
                 for s in i.ReferencedSeriesSequence for r in s.ReferencedSOPSequence}
        assert moved == {str(history.prior_a[0].SOPInstanceUID)}
        check = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
        assert [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")] == []
        assert _oru_comparison(ris, current_uid) == said

        # The other patient: none found.  The next study: the source was down.  Both drafted and sent.
        none_found = "Comparison: none available. No earlier relevant study of this patient was found."
        _, other_sr = _sr_of(pacs, str(other[0].StudyInstanceUID))
        assert _texts(other_sr, "55114-3") == [none_found]
        assert _oru_comparison(ris, str(other[0].StudyInstanceUID)) == [none_found]
        down = "Comparison: none available. The prior source could not be reached."
        _, later_sr = _sr_of(pacs, str(later[0].StudyInstanceUID))
        assert _texts(later_sr, "55114-3") == [down]
        later_view = service.get(f"/api/studies/{by_uid[str(later[0].StudyInstanceUID)]['id']}").json()
        assert later_view["comparison"]["reason_code"] == "priors.source_down"
        assert "none available for comparison" in later_view["prompt"]
        page = service.get(f"/studies/{by_uid[str(later[0].StudyInstanceUID)]['id']}").text
        assert "No prior available for comparison." in page and "The prior source could not be reached." in page
        _screenshot(service, by_uid[current_uid]["id"])

    # No patient data in any log line, the prior's report text neither.
    log_text = service.log.read_text()
    for sentinel in (SENTINEL_NAME, SENTINEL_PATIENT_ID, SENTINEL_ACCESSION, SENTINEL_BIRTH_DATE, "PRIORA-ACC",
                     "NO-PRIORS-E2E"):
        assert sentinel not in log_text
    assert REPORT_A_IMPRESSION not in log_text and "priors searched: 1 found" in log_text
