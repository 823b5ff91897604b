"""A radiologist's review in a real headless Chromium: log in, find the held head CT first in the
review queue, read its warning above the draft and release it with a reason; then rate a delivered
chest CT (useful with edits, poor wording, a corrected text) and see the verdict on the page.

Runs ``radassist run`` with the tiny model (chest text) and storescp as the PACS.  Saves screenshots
to tests/artifacts/ (``review-queue.png``, ``review-held-draft.png``, ``review-verdict.png``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.conftest import wait_until
from tests.e2e.test_pipeline import make_ct_study, run_service, send, tiny_model, write_config  # noqa: F401
from tests.peers import storescp
from tests.safety.test_pipeline_safety import head_ct
from tests.web.test_browser import ARTIFACTS, browser  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "radiologist-password"


def test_a_radiologist_reviews_a_held_draft_and_rates_a_delivered_one(
    browser, tmp_path: Path, tiny_model: Path, run_service  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    head_uid, head_files = head_ct(tmp_path / "head")
    chest_uid, chest_files = make_ct_study(tmp_path / "chest")
    with storescp(tmp_path / "pacs") as pacs:
        config = tmp_path / "radassist.toml"
        ports = write_config(config, data=tmp_path / "data", model=str(tiny_model), pacs=pacs, ris=None)
        service = run_service(config, *ports)
        subprocess.run([sys.executable, "-m", "radassist", "user", "add", "dr-rad", "--role", "radiologist",
                        "--password-stdin", "--config", str(config)], input=PASSWORD + "\n", text=True, check=True,
                       capture_output=True, timeout=60)
        send(service.dicom_port, *head_files)
        send(service.dicom_port, *chest_files)

        def states() -> dict[str, str]:
            return {s["study_instance_uid"]: s["state"] for s in service.studies()}

        wait_until(lambda: states() == {head_uid: "needs_review", chest_uid: "done"}, timeout=240, interval=1)
        assert [str(pydicom.dcmread(p).StudyInstanceUID) for p in pacs.received()] == [chest_uid]

        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        page.goto(service.web + "/login")
        page.fill("input[name=username]", "dr-rad")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator(".who")).to_contain_text("dr-rad (radiologist)")
        expect(page.locator("nav.filters")).to_contain_text("needs_review 1")
        expect(page.locator("td.warnings .check")).to_have_text("anatomy")

        page.click("nav.top a[href='/review']")
        expect(page.locator("h1")).to_have_text("Review queue")
        first = page.locator("table.review tbody tr").first
        expect(first.locator(".badge")).to_have_text("needs_review")
        expect(first).to_contain_text("CT HEAD W/O CONTRAST")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

        first.locator("a").first.click()
        safety = page.locator("#safety")
        expect(safety).to_contain_text("Held for review: nothing has been sent")
        expect(safety).to_contain_text("judged from the ct_head prompt profile")
        expect(safety.locator(".explanation")).to_contain_text("did not image")
        page.screenshot(path=str(ARTIFACTS / "review-held-draft.png"), full_page=True)
        page.fill("form.release input[name=reason]", "Text describes the chest; sent with its warning for the record")
        page.click("form.release button")
        expect(page.locator("h1")).to_contain_text("CT HEAD")

        def released() -> bool:
            page.reload()
            return page.locator("h1 .badge").inner_text() == "done"

        wait_until(released, timeout=120, interval=1)
        assert sorted(str(pydicom.dcmread(p).StudyInstanceUID) for p in pacs.received()) == sorted([head_uid, chest_uid])

        chest_id = next(s["id"] for s in service.studies() if s["study_instance_uid"] == chest_uid)
        page.goto(f"{service.web}/studies/{chest_id}")
        form = page.locator("form.verdict")
        form.locator("input[value=useful_with_edits]").check()
        form.locator("input[value=poor_wording]").check()
        form.locator("textarea[name=corrected_text]").fill("Lungs clear. No effusion. Normal heart size.")
        form.locator("button").click()
        verdicts = page.locator("table.verdicts tbody tr")
        expect(verdicts).to_have_count(1)
        expect(verdicts.first).to_contain_text("Useful with edits")
        expect(verdicts.first).to_contain_text("Poor wording")
        page.screenshot(path=str(ARTIFACTS / "review-verdict.png"), full_page=True)
        page.close()

    detail = service.get(f"/api/studies/{chest_id}").json()
    [verdict] = detail["review"]["verdicts"]
    assert verdict["user_name"] == "dr-rad" and verdict["reasons"] == ["poor_wording"]
    assert verdict["seconds_spent"] is not None and verdict["seconds_spent"] > 0  # measured by the page
    audit = service.get("/api/audit").json()
    assert [(a["action"], a["user_name"]) for a in audit[:2]] == [("verdict", "dr-rad"), ("release_draft", "dr-rad")]
