"""The admin's day in a real headless Chromium: log in, watch a study sent by dcmtk's storescu come
in and fail to reach a PACS that is down, bring the PACS up, press "Retry SR" and see the study done.

Runs ``radassist run`` with the tiny model, as the pipeline test does (its helpers are reused).
Saves a screenshot to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, wait_until
from tests.e2e.test_pipeline import make_ct_study, run_service, send, tiny_model, write_config  # noqa: F401
from tests.peers import Pacs, storescp

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def test_admin_retries_a_failed_delivery_in_the_browser(browser, tmp_path: Path, tiny_model: Path,  # noqa: F811
                                                        run_service) -> None:  # noqa: F811
    from playwright.sync_api import expect

    pacs_port = free_port()  # nothing listens there yet: the PACS is down
    config = tmp_path / "radassist.toml"
    ports = write_config(config, data=tmp_path / "data", model=str(tiny_model),
                         pacs=Pacs("PACS", pacs_port, tmp_path / "pacs", None), ris=None)  # type: ignore[arg-type]
    # Give up on the PACS after a few seconds, so the delivery fails for good quickly.
    config.write_text(config.read_text().replace("[delivery]\n", "[delivery]\nmax_age_seconds = 2\n"))
    service = run_service(config, *ports)  # also makes the admin "e2e" (password "e2e-password")

    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(20_000)
    page.goto(service.web + "/")
    expect(page).to_have_url(f"{service.web}/login?next=%2F")
    page.fill("input[name=username]", "e2e")
    page.fill("input[name=password]", "e2e-password")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("RadAssist worklist")
    expect(page.locator(".who")).to_contain_text("e2e (admin)")

    _, files = make_ct_study(tmp_path / "ct")
    send(service.dicom_port, *files)

    def row_state() -> str | None:
        page.reload()
        badge = page.locator("tbody tr td:first-child .badge")
        return badge.first.inner_text() if badge.count() else None

    assert wait_until(row_state, timeout=60, interval=1) in {"receiving", "complete", "queued", "drafting",
                                                              "delivering", "failed"}
    wait_until(lambda: row_state() == "failed", timeout=180, interval=1)
    expect(page.locator("td.failure").first).to_contain_text("pacs")

    page.locator("tbody tr td:first-child a").first.click()
    expect(page.locator("h1")).to_contain_text("CT CHEST")
    expect(page.locator(".draft-banner")).to_have_text("AI DRAFT — NOT VERIFIED")
    expect(page.locator(".thumbs img")).to_have_count(3)
    page.wait_for_function("Array.from(document.querySelectorAll('.thumbs img')).every(i => i.naturalWidth > 0)")

    with storescp(tmp_path / "pacs", port=pacs_port) as pacs:  # the PACS is back
        page.click("button:has-text('Retry SR')")
        expect(page.locator("h1")).to_contain_text("CT CHEST")  # redirected back to the study

        def delivered() -> bool:
            page.reload()
            return page.locator("h1 .badge").inner_text() == "done"

        wait_until(delivered, timeout=120, interval=1)
        expect(page.locator("table").filter(has_text="Channel").locator(".badge").first).to_have_text("delivered")
        assert len(pacs.received()) == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "study-after-retry.png"), full_page=True)

    page.goto(service.web + "/audit")
    expect(page.locator("tbody tr").first).to_contain_text("retry_delivery")
    expect(page.locator("tbody tr").first).to_contain_text("e2e")
    page.goto(service.web + "/")
    expect(page.locator("tbody tr td:first-child .badge").first).to_have_text("done")
    page.screenshot(path=str(ARTIFACTS / "worklist.png"), full_page=True)
    page.close()

