"""The conversation's JSON API, event stream, kept pictures and study-page panel, through the real app
(radiologist, admin and viewer; bearer tokens and a browser session with its CSRF token)."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.broker import GPU_QUEUE, client, queue_depths
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import AuditEntry, ConversationTurn
from radassist.imaging.context import ClinicalContext
from radassist.imaging.prepare import PreparedStudy
from radassist.states import TurnState
from radassist.store.prepared import prepared_store
from radassist.web.app import create_app
from tests.conversation.test_ask import add_drafted_study
from tests.web.support import add_user, bearer, csrf_of, login


@dataclass
class Site:
    settings: Settings
    sessions: sessionmaker[Session]
    study_id: uuid.UUID
    undrafted_id: uuid.UUID
    rad: str
    viewer: str
    admin: str

    def api(self, study_id: uuid.UUID | None = None) -> str:
        return f"/api/studies/{study_id or self.study_id}/conversation"


@pytest.fixture
def site(migrated_settings: Settings) -> Iterator[Site]:
    sessions = make_sessionmaker(migrated_settings)
    with sessions() as session:
        study_id, _ = add_drafted_study(session)
        undrafted_id, _ = add_drafted_study(session, with_draft=False)
    yield Site(migrated_settings, sessions, study_id, undrafted_id, add_user(migrated_settings, "rad", "radiologist"),
               add_user(migrated_settings, "viewer1", "viewer"), add_user(migrated_settings, "admin1", "admin"))
    sessions.kw["bind"].dispose()


@pytest.fixture
def app_client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.settings)) as c:
        yield c


def test_a_radiologist_asks_and_reads_the_conversation(site: Site, app_client: TestClient) -> None:
    empty = app_client.get(site.api(), headers=bearer(site.rad))
    assert empty.status_code == 200
    assert empty.json()["turns"] == [] and empty.json()["can_ask"] is True
    asked = app_client.post(site.api(), json={"question": "Is there a pneumothorax?"}, headers=bearer(site.rad))
    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert body["ok"] is True and body["code"] == "conversation.asked" and uuid.UUID(body["turn_id"])
    view = app_client.get(site.api(), headers=bearer(site.rad)).json()
    [turn] = view["turns"]
    assert turn["question"] == "Is there a pneumothorax?" and turn["state"] == "pending"
    assert turn["ai_generated"] is True and turn["verified"] is False
    assert view["open_turn"] is True and view["can_ask"] is False
    assert view["cannot_ask_because"] == "The previous question is still being answered."
    again = app_client.post(site.api(), json={"question": "And now?"}, headers=bearer(site.rad))
    assert again.status_code == 409 and again.json()["code"] == "conversation.busy"
    # The answer task went to the drafting workers' queue (the embedded broker here).
    assert queue_depths(client(site.settings), [GPU_QUEUE])[GPU_QUEUE] == 1
    # Another user's conversation is their own; an admin may ask too.
    assert app_client.get(site.api(), headers=bearer(site.admin)).json()["turns"] == []
    assert app_client.post(site.api(), json={"question": "Any fracture?"}, headers=bearer(site.admin)).status_code == 202
    with site.sessions() as session:
        audited = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(a.user_name, a.outcome, a.detail.get("question")) for a in audited] == [
            ("rad", "done", "Is there a pneumothorax?"), ("rad", "refused", None), ("admin1", "done", "Any fracture?")]


def test_a_viewer_can_neither_ask_nor_read(site: Site, app_client: TestClient) -> None:
    headers = bearer(site.viewer)
    assert app_client.get(site.api(), headers=headers).status_code == 403
    assert app_client.post(site.api(), json={"question": "Anything?"}, headers=headers).status_code == 403
    assert app_client.get(site.api() + "/stream", headers=headers).status_code == 403
    page = app_client.get(f"/studies/{site.study_id}", headers=headers)
    assert page.status_code == 200
    assert "Only radiologists and admins can ask the model about a study." in page.text
    assert 'class="ask"' not in page.text
    with site.sessions() as session:
        assert session.scalars(select(ConversationTurn)).all() == []


def test_refusals_say_why_and_never_repeat_the_question(site: Site, app_client: TestClient) -> None:
    headers = bearer(site.rad)
    nul = app_client.post(site.api(), json={"question": "SENTINEL\x00question"}, headers=headers)
    assert nul.status_code == 422 and nul.json()["code"] == "conversation.bad_question"
    assert "SENTINEL" not in nul.text and "control characters" in nul.json()["message"]
    for body in ({"question": "   "}, {"question": 7}, ["not", "an", "object"]):
        response = app_client.post(site.api(), json=body, headers=headers)
        assert response.status_code == 422, body
    none = app_client.post(site.api(site.undrafted_id), json={"question": "Anything?"}, headers=headers)
    assert none.status_code == 409 and none.json()["code"] == "conversation.no_draft"
    assert app_client.get(site.api(uuid.uuid4()), headers=headers).status_code == 404
    assert app_client.post(site.api(uuid.uuid4()), json={"question": "Anything?"}, headers=headers).status_code == 404


def test_a_browser_session_asks_with_its_csrf_token(site: Site, app_client: TestClient) -> None:
    assert login(app_client, "rad") == 303
    page = app_client.get(f"/studies/{site.study_id}")
    assert 'id="conversation"' in page.text and "AI answer, not verified" in page.text
    token = csrf_of(page.text)
    refused = app_client.post(site.api(), json={"question": "Anything?"})
    assert refused.status_code == 403
    asked = app_client.post(site.api(), json={"question": "Anything?"}, headers={"X-CSRF-Token": token})
    assert asked.status_code == 202
    # A browser without scripts posts the form and is sent back to the study.
    with site.sessions.begin() as session:
        session.execute(update(ConversationTurn).values(state=TurnState.ANSWERED, answer="No."))
    form = app_client.post(site.api(), data={"csrf_token": token, "question": "And the heart?"}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"] == f"/studies/{site.study_id}#conversation"
    questions = [t["question"] for t in app_client.get(site.api()).json()["turns"]]
    assert questions == ["Anything?", "And the heart?"]
    assert "has no draft to ask about yet" in app_client.get(f"/studies/{site.undrafted_id}").text


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, line.removeprefix("data: ")


def test_the_stream_shows_the_answer_as_it_is_written(site: Site, app_client: TestClient) -> None:
    asked = app_client.post(site.api(), json={"question": "Is there a pneumothorax?"}, headers=bearer(site.rad)).json()
    turn_id = uuid.UUID(asked["turn_id"])
    with site.sessions.begin() as session:
        session.execute(update(ConversationTurn).values(state=TurnState.ANSWERING, answer="The lungs"))
    writer_done = threading.Event()

    def write_the_rest() -> None:  # the worker's next writes, while the stream is open
        with site.sessions.begin() as session:
            session.execute(update(ConversationTurn).where(ConversationTurn.id == turn_id)
                            .values(answer="The lungs are clear."))
        with site.sessions.begin() as session:
            session.execute(update(ConversationTurn).where(ConversationTurn.id == turn_id)
                            .values(state=TurnState.ANSWERED, answer="The lungs are clear. No pneumothorax."))
        writer_done.set()

    seen: list[tuple[str, str]] = []
    with app_client.stream("GET", site.api() + "/stream", headers=bearer(site.rad)) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for name, data in _events(response.iter_lines()):
            seen.append((name, data))
            if len(seen) == 1:
                threading.Thread(target=write_the_rest).start()
            if name == "idle":
                break
    assert writer_done.wait(10)

    answers = [json.loads(d)["answer"] for n, d in seen if n == "turn"]
    assert answers[0] == "The lungs" and answers[-1] == "The lungs are clear. No pneumothorax."
    states = [json.loads(d)["state"] for n, d in seen if n == "turn"]
    assert states[0] == "answering" and states[-1] == "answered"
    assert seen[-1][0] == "idle" and json.loads(seen[-1][1])["can_ask"] is True


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_pictures_the_model_saw_are_served_to_reviewers_only(site: Site, app_client: TestClient) -> None:
    app_client.post(site.api(), json={"question": "Where?"}, headers=bearer(site.rad))
    with site.sessions() as session:
        job_id = session.scalars(select(ConversationTurn.job_id)).one()
    picture = Image.new("RGB", (40, 30), (200, 10, 10))
    study = PreparedStudy(images=(picture,), context=ClinicalContext(modality="CR"), source_sop_instance_uids=("1.2.3",),
                          labels=("PA",))
    prepared_store(site.settings).save(job_id, study, None)
    url = f"/studies/{site.study_id}/conversation/pictures/{job_id}/0.png"
    served = app_client.get(url, headers=bearer(site.rad))
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content.startswith(b"\x89PNG")  # the same picture, whatever the PNG encoder's settings
    assert Image.open(io.BytesIO(served.content)).tobytes() == Image.open(io.BytesIO(_png(picture))).tobytes()
    assert app_client.get(url, headers=bearer(site.viewer)).status_code == 403
    assert app_client.get(url.replace("/0.png", "/1.png"), headers=bearer(site.rad)).status_code == 404
    other = url.replace(str(site.study_id), str(site.undrafted_id))  # a job of another study
    assert app_client.get(other, headers=bearer(site.rad)).status_code == 404


def test_the_api_is_documented(site: Site, app_client: TestClient) -> None:
    spec = app_client.get("/api/openapi.json", headers=bearer(site.rad)).json()
    paths = spec["paths"]
    post = paths["/api/studies/{study_id}/conversation"]["post"]
    assert set(post["responses"]) >= {"202", "404", "409", "422", "429"}
    assert "application/json" in post["requestBody"]["content"]
    assert "get" in paths["/api/studies/{study_id}/conversation"]
    assert "text/event-stream" in paths["/api/studies/{study_id}/conversation/stream"]["get"]["responses"]["200"]["content"]
