"""A radiologist's conversation with the model in a real headless Chromium, against ``radassist run``
(embedded database and broker) with a scripted tiny model: two questions asked on the study page,
each answer shown as it is written and marked as an unverified AI answer; a viewer sees the panel
but cannot ask (403 from the API too); the admin's audit log names who asked what.

Screenshots go to tests/artifacts/ (conversation.png, the panel alone, is the one for the README).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from radassist_devtools.tiny_models import write_tiny_model
from tests.conftest import wait_until
from tests.e2e.test_pipeline import run_service, send, write_config  # noqa: F401
from tests.web.test_browser import ARTIFACTS, browser  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ANSWER = ("Findings: No pneumothorax is seen. The lungs are clear. "
          "Impression: No acute cardiopulmonary abnormality.")
PASSWORD = "conversation-password"


@pytest.fixture(scope="module")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("conversation-browser") / "gemma3", arch="gemma3", report=ANSWER)


def add_user(config: Path, name: str, role: str) -> str:
    """A user made with ``radassist user add``; returns an API token for it."""
    base = [sys.executable, "-m", "radassist", "user"]
    subprocess.run([*base, "add", name, "--role", role, "--password-stdin", "--config", str(config)],
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=60)
    return subprocess.run([*base, "token", name, "--config", str(config)], text=True, check=True,
                          capture_output=True, timeout=60).stdout.strip()


def log_in(page, web: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(web + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(web + "/")


def test_a_radiologist_asks_about_a_study_and_a_viewer_cannot(browser, tmp_path: Path, testdata: Path,  # noqa: F811
                                                              scripted_model: Path, run_service) -> None:  # noqa: F811
    from playwright.sync_api import expect

    config = tmp_path / "radassist.toml"
    ports = write_config(config, data=tmp_path / "data", model=str(scripted_model), pacs=None, ris=None)
    service = run_service(config, *ports)
    add_user(config, "dr.house", "radiologist")
    viewer_token = add_user(config, "clerk", "viewer")
    send(service.dicom_port, testdata / "pydicom-data" / "RG1_J2KR.dcm")
    study = wait_until(lambda: next((s for s in service.studies() if s["state"] == "done"), None), timeout=180,
                       interval=1)
    study_url = f"{service.web}/studies/{study['id']}"
    api = f"{service.web}/api/studies/{study['id']}/conversation"

    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(30_000)
    log_in(page, service.web, "dr.house")
    page.goto(study_url)
    panel = page.locator("#conversation")
    expect(panel.locator("h2")).to_have_text("Ask the model about this study")
    expect(panel.locator(".note")).to_contain_text("AI answer, not verified")
    # Every text the first answer shows, as the page shows it (the panel follows the turn's row).
    page.evaluate("""() => { window.__shown = [];
        new MutationObserver(() => document.querySelectorAll('#conversation li.turn').forEach(li =>
            window.__shown.push([li.dataset.state, li.querySelector('.answer-text')?.textContent || ''])))
          .observe(document.querySelector('#conversation ol.turns'), {childList: true, subtree: true}); }""")

    questions = ["Is there a pneumothorax?", "Which side is the effusion?"]
    for number, question in enumerate(questions, start=1):
        panel.locator("textarea[name=question]").fill(question)
        panel.locator("button.ask-button").click()
        turn = panel.locator("li.turn").nth(number - 1)
        expect(turn.locator(".question")).to_have_text(question)
        expect(turn).to_have_attribute("data-state", "answered", timeout=120_000)
        expect(turn.locator(".answer-text")).to_have_text(ANSWER)
        expect(turn.locator(".ai-mark")).to_have_text("AI ANSWER — NOT VERIFIED")
        expect(turn.locator(".answer-meta")).to_contain_text("Model ")
        expect(panel.locator("button.ask-button")).to_be_enabled()
    shown = page.evaluate("window.__shown")
    assert ["pending", ""] in shown or ["answering", ""] in shown, shown[:5]  # it was followed while open
    assert shown[-1] == ["answered", ANSWER]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "conversation-page.png"), full_page=True)
    panel.screenshot(path=str(ARTIFACTS / "conversation.png"))

    # An answer being written appears as it grows, without reloading: the worker's partial writes are
    # played here into the turn's row by hand, at a pace a screen can follow.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'radassist.sqlite3'}")
    turns = sa.table("conversation_turns", sa.column("number"), sa.column("state"), sa.column("answer"),
                     sa.column("user_name"))
    mine = (turns.c.number == 2) & (turns.c.user_name == "dr.house")
    try:
        with engine.begin() as connection:
            connection.execute(sa.update(turns).where(mine).values(state="answering", answer="Findings: No"))
        page.reload()
        second = panel.locator("li.turn").nth(1)
        expect(second).to_have_attribute("data-state", "answering")
        expect(second.locator(".answer-text")).to_have_text("Findings: No")
        expect(panel.locator("button.ask-button")).to_be_disabled()
        for text in ("Findings: No pneumothorax is seen.", ANSWER):
            with engine.begin() as connection:
                connection.execute(sa.update(turns).where(mine).values(answer=text))
            expect(second.locator(".answer-text")).to_have_text(text)
        with engine.begin() as connection:
            connection.execute(sa.update(turns).where(mine).values(state="answered"))
        expect(second).to_have_attribute("data-state", "answered")
        expect(panel.locator("button.ask-button")).to_be_enabled()
    finally:
        engine.dispose()
    page.close()

    viewer = browser.new_page(viewport={"width": 1300, "height": 900})
    log_in(viewer, service.web, "clerk")
    viewer.goto(study_url)
    expect(viewer.locator("#conversation")).to_contain_text("Only radiologists and admins can ask the model")
    expect(viewer.locator("#conversation textarea")).to_have_count(0)
    refused = viewer.request.post(api, data={"question": "Can I ask?"}, headers={"Authorization": f"Bearer {viewer_token}"})
    assert refused.status == 403
    assert viewer.request.get(api).status == 403
    viewer.locator("#conversation").scroll_into_view_if_needed()
    viewer.screenshot(path=str(ARTIFACTS / "conversation-viewer.png"), full_page=True)
    viewer.close()

    audit = service.get("/api/audit").json()
    asked = [(a["user_name"], a["detail"].get("question"), a["target"]) for a in audit if a["action"] == "conversation.ask"]
    assert sorted(asked) == sorted(("dr.house", q, study["id"]) for q in questions)
