"""The Quality page in a real headless Chromium, served by ``radassist web``: a viewer logs in, looks
at two months of measured drafts, narrows them to a slice, and follows a critical miss to its study.
Saves tests/artifacts/quality-page.png.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.migrate import upgrade
from tests.conftest import REPO, free_port, wait_for_port
from tests.quality.test_quality_page import seed
from tests.web.support import PASSWORD, add_user

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"


def test_a_viewer_reads_the_quality_page_in_the_browser(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    port = free_port()
    environ = {"RADASSIST_STORAGE_PATH": str(tmp_path / "data"),
               "RADASSIST_DATABASE_URL": f"sqlite:///{tmp_path / 'quality.sqlite3'}",
               "RADASSIST_WEB_HOST": "127.0.0.1", "RADASSIST_WEB_PORT": str(port),
               "RADASSIST_QUALITY_BOOTSTRAP_SAMPLES": "500"}
    settings = make_settings(**{k.removeprefix("RADASSIST_").lower(): v for k, v in environ.items()})
    upgrade(settings)
    sessions = make_sessionmaker(settings)
    with sessions() as session:
        seeded = seed(session, settings, rounds=6)
    sessions.kw["bind"].dispose()
    add_user(settings, "reader", "viewer")

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}, **environ}
    web = subprocess.Popen([sys.executable, "-m", "radassist", "web"], env=env,
                           stdout=(tmp_path / "web.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=60)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.set_default_timeout(20_000)
                base = f"http://127.0.0.1:{port}"
                page.goto(f"{base}/quality?days=70")
                page.fill("input[name=username]", "reader")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                expect = sync_api.expect
                expect(page.locator("h1")).to_have_text("Quality: drafts against the signed final reports")
                expect(page.locator(".card").first).to_contain_text("60")
                assert page.locator(".plot svg").count() == 2
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "quality-page.png"), full_page=False)

                page.select_option("select[name=sex]", "M")
                page.click("button:has-text('Show')")
                expect(page.locator(".card").first).to_contain_text("24")
                page.locator("a:has-text('open study')").first.click()
                expect(page).to_have_url(f"{base}/studies/" + page.url.rsplit("/", 1)[-1])
                missed = {str(d.study_id) for d in seeded.live}
                assert page.url.rsplit("/", 1)[-1] in missed
            finally:
                browser.close()
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
