"""Seen in a real viewer: the draft SR opened in OHIF v3, next to the study's images.

OHIF's built app (npm ``@ohif/app``) and Orthanc's DICOMweb are served from one origin by nginx;
Debian's headless Chromium, driven by Playwright, opens the study, opens the SR series and reads
the page.  OHIF shows neither VerificationFlag nor PreliminaryFlag, so the test checks that the
words of the AI-draft notice are on screen.  A screenshot is saved under tests/artifacts/.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from radassist.sr import build_draft_sr, sr_uids_for_job
from tests.dicom_factories import make_ct_study, write_study
from tests.viewer.conftest import CHROMIUM, ViewerSite

pytestmark = pytest.mark.viewer

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
FINDINGS = "The lungs are clear.\nNo pleural effusion or pneumothorax."
IMPRESSION = "No acute cardiopulmonary abnormality."
NOTICE_WORDS = "NOT VERIFIED BY A RADIOLOGIST"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _stow(site: ViewerSite, paths: list[Path]) -> None:
    for path in paths:
        response = httpx.post(f"{site.orthanc.url}/instances", content=path.read_bytes(), timeout=30)
        response.raise_for_status()


@pytest.fixture
def study_with_sr(ohif_site: ViewerSite, tmp_path: Path) -> Iterator[tuple[str, str]]:
    instances = make_ct_study(series_count=1, instances_per_series=3, rows=128, columns=128)
    paths = write_study(instances, tmp_path / "ct")
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    series_uid, sop_uid = sr_uids_for_job(uuid.uuid4())
    sr = build_draft_sr(
        headers,
        findings=FINDINGS,
        impression=IMPRESSION,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        model_name="tiny-test-model",
        model_revision="1",
        software_version="0.1.0",
        indication="Cough and fever for 3 days.",
        key_image_uids=[headers[1].SOPInstanceUID],
    )
    sr_path = tmp_path / "sr.dcm"
    sr.save_as(sr_path, enforce_file_format=True)
    _stow(ohif_site, [*paths, sr_path])
    yield str(headers[0].StudyInstanceUID), series_uid


def test_ohif_shows_the_draft_impression_and_the_notice_next_to_the_images(
    ohif_site: ViewerSite, study_with_sr: tuple[str, str]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    study_uid, _sr_series_uid = study_with_sr
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # OHIF's first-visit tour would cover the viewer: mark it as shown.
            page.add_init_script("localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']));")
            page.goto(f"{ohif_site.url}/viewer?StudyInstanceUIDs={study_uid}", wait_until="domcontentloaded")
            # The study browser lists the CT series and our SR series (by its description).
            sr_thumbnail = page.get_by_text("AI DRAFT - NOT VERIFIED").first
            expect(sr_thumbnail).to_be_visible(timeout=90_000)
            page.screenshot(path=str(ARTIFACTS / "ohif-study.png"))
            # Two viewports side by side: the CT image stays on the left, the SR opens on the right.
            page.locator("[data-cy=layout-button]").click()
            page.locator("[data-cy=Layout-1-0]").click()
            panes = page.locator("[data-cy=viewport-pane]")
            expect(panes).to_have_count(2, timeout=30_000)
            panes.nth(1).click()
            sr_thumbnail.dblclick()
            sr_pane, image_pane = panes.nth(1), panes.nth(0)
            expect(sr_pane.get_by_text(IMPRESSION).first).to_be_visible(timeout=60_000)
            expect(sr_pane.get_by_text(NOTICE_WORDS).first).to_be_visible(timeout=10_000)
            expect(sr_pane.get_by_text("Impressions").first).to_be_visible()
            # ... next to the image: the left viewport still shows the CT series with its canvas.
            expect(image_pane.get_by_text("Axial 1").first).to_be_visible()
            expect(image_pane.locator("canvas").first).to_be_visible()
            # The CPU renderer keeps the pre-split geometry until the camera is reset.
            image_pane.click()
            page.locator("[data-cy=Reset-btn]").click()
            page.screenshot(path=str(ARTIFACTS / "ohif-draft-sr.png"))
        finally:
            browser.close()
