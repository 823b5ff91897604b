"""A grounded draft end to end: ``radassist run`` with a scripted tiny Qwen2.5-VL drafts a study sent by
dcmtk's storescu, finds the box the model drew, maps it back onto the source slice and sends the
measurement report to Orthanc (an Orthanc destination) beside the draft SR; Orthanc stores it,
``dciodvfy`` finds no error in it, OHIF v3 draws its box where the marker is, and the study page
draws the same box over the slice the model saw.

The slice is 560 x 280 with a bright marker on columns 200..299, rows 100..159.  The model is shown
it shrunk to 112 x 56 and padded square (``image_size`` 112, ``pad_to_square``), and its processor
sizes that to 56 x 56, where the marker is the box (20, 24, 30, 30) the scripted model writes.
Screenshots: tests/artifacts/ohif-grounded-pipeline.png and tests/artifacts/study-page-grounded.png.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest

from radassist.sr.measurement_report import SERIES_DESCRIPTION, grounding_sr_uids
from radassist_devtools.tiny_models import write_tiny_model
from tests.conftest import wait_until
from tests.e2e.test_pipeline import run_service, send, write_config  # noqa: F401 - run_service is a fixture
from tests.grounding.marked import marked_ct
from tests.viewer.conftest import CHROMIUM, ViewerSite
from tests.viewer.test_ohif_grounding import ARTIFACTS, CHROMIUM_ARGS, _bounds, open_report_in_ohif

pytestmark = [pytest.mark.viewer, pytest.mark.e2e]

DCIODVFY = "/usr/bin/dciodvfy"
COLUMNS, ROWS = 560, 280
MARKER = (200, 100, 300, 160)
FINDING = "Dense focus in the right upper zone"
REPORT = (f"Findings: {FINDING}. The heart is normal. Impression: Right upper zone focus.\n```json\n"
          + json.dumps([{"bbox_2d": [20, 24, 30, 30], "label": FINDING}]) + "\n```")

# The study page's box and its picture, in page pixels.
READ_STUDY_PAGE = """() => {
  const svg = document.querySelector('.grounded svg');
  const rect = svg.querySelector('rect');
  const s = svg.getBoundingClientRect(), r = rect.getBoundingClientRect();
  return {svg: [s.left, s.top, s.width, s.height], rect: [r.left, r.top, r.right, r.bottom],
          label: svg.querySelector('text').textContent, title: svg.querySelector('title').textContent};
}"""


def _config(tmp_path: Path, model: Path, orthanc_url: str) -> tuple[Path, tuple[int, int]]:
    config = tmp_path / "radassist.toml"
    ports = write_config(config, data=tmp_path / "data", model=str(model), pacs=None, ris=None)
    text = config.read_text().replace("image_size = 64", "image_size = 112\npad_to_square = true")
    text += f'[[destinations]]\nkind = "orthanc"\nname = "orthanc"\nurl = "{orthanc_url}"\n'
    config.write_text(text)
    return config, ports


def _orthanc_file(orthanc_url: str, sop_instance_uid: str, folder: Path) -> Path:
    found = httpx.post(f"{orthanc_url}/tools/lookup", content=sop_instance_uid, timeout=30).json()
    (instance,) = [item for item in found if item["Type"] == "Instance"]
    path = folder / f"{sop_instance_uid}.dcm"
    path.write_bytes(httpx.get(f"{orthanc_url}/instances/{instance['ID']}/file", timeout=30).content)
    return path


def test_a_grounded_draft_reaches_orthanc_and_ohif_draws_its_box(
    ohif_site: ViewerSite, tmp_path: Path, run_service: Any  # noqa: F811
) -> None:
    from playwright.sync_api import expect, sync_playwright

    model = write_tiny_model(tmp_path / "model", arch="qwen2_5_vl", report=REPORT)
    slice_path = tmp_path / "slice.dcm"
    source = marked_ct(COLUMNS, ROWS, MARKER)
    source.save_as(slice_path, enforce_file_format=True)
    orthanc_url = ohif_site.orthanc.url
    # The PACS holds the images (the modality sent them there too); RadAssist adds its reports.
    httpx.post(f"{orthanc_url}/instances", content=slice_path.read_bytes(), timeout=30).raise_for_status()
    config, ports = _config(tmp_path, model, orthanc_url)
    service = run_service(config, *ports)
    send(service.dicom_port, slice_path)

    def done() -> dict[str, Any] | None:
        studies = service.studies()
        assert all(s["state"] != "failed" for s in studies), studies
        return studies[0] if studies and studies[0]["state"] == "done" else None

    study = wait_until(done, timeout=240, interval=1)
    assert sorted((d["channel"], d["destination"], d["state"]) for d in study["deliveries"]) == [
        ("grounding_sr", "orthanc", "delivered"), ("sr", "orthanc", "delivered")]
    detail = service.get(f"/api/studies/{study['id']}").json()
    (finding,) = detail["grounding"]["findings"]
    assert finding == {"number": 1, "text": FINDING, "boxes": 1}
    assert detail["draft"]["findings"] == f"{FINDING}. The heart is normal."

    # Orthanc stores the measurement report; it is valid, and its region is the marker, exactly.
    report_path = _orthanc_file(orthanc_url, grounding_sr_uids(uuid.UUID(study["job_id"]))[1], tmp_path)
    report = pydicom.dcmread(report_path)
    assert report.StudyInstanceUID == source.StudyInstanceUID and report.SeriesDescription == SERIES_DESCRIPTION
    check = subprocess.run([DCIODVFY, str(report_path)], capture_output=True, text=True, timeout=60)
    assert [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")] == []
    group = report.ContentSequence[-2].ContentSequence[0]  # Imaging Measurements > the one measurement group
    region = next(item for item in group.ContentSequence if item.get("ValueType") == "SCOORD")
    assert [float(v) for v in region.GraphicData] == [200, 100, 300, 100, 300, 160, 200, 160, 200, 100]

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # The study page: the box over the slice the model saw, labelled with its finding.
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(service.web + "/login")
            page.fill("input[name=username]", "e2e")
            page.fill("input[name=password]", "e2e-password")
            page.click("button[type=submit]")
            page.goto(f"{service.web}/studies/{study['id']}", wait_until="networkidle")
            expect(page.locator(".grounded svg rect")).to_have_count(1, timeout=30_000)
            shown: dict[str, Any] = page.evaluate(READ_STUDY_PAGE)
            page.locator(".grounded").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "study-page-grounded.png"), full_page=True)
            left, top, width, height = shown["svg"]
            expected = (left + width * MARKER[0] / COLUMNS, top + height * MARKER[1] / ROWS,
                        left + width * MARKER[2] / COLUMNS, top + height * MARKER[3] / ROWS)
            assert all(abs(a - e) <= 2 for a, e in zip(shown["rect"], expected, strict=True)), (shown, expected)
            assert shown["label"] == "1" and shown["title"] == f"1: {FINDING}"

            # OHIF opens the measurement report and draws its box over the marker.
            viewer = browser.new_page(viewport={"width": 1400, "height": 900})
            seen = open_report_in_ohif(viewer, ohif_site.url, source.StudyInstanceUID, "ohif-grounded-pipeline")
        finally:
            browser.close()
    (line,) = seen["lines"]
    drawn, marker = _bounds(line["points"]), seen["marker"]
    width = marker[2] - marker[0]
    assert width > 50, seen
    assert all(abs(d - m) <= 0.04 * width for d, m in zip(drawn, marker, strict=True)), (drawn, marker)
