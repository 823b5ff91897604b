"""Answers through the OpenAI-compatible backend, streamed (``stream: true``) from a stand-in server:
what is sent, the pieces as they come, how it ends, how failures are classified, and the whole path
from a drafted study to an answered question."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable, Iterator

import pytest
from PIL import Image

from radassist.config import ModelSettings
from radassist.conversation.chat import StreamEnd, chat_for
from radassist.conversation.chat_openai import OpenAIChat
from radassist.conversation.context import Conversation, Exchange
from radassist.db.tables import ConversationTurn
from radassist.errors import PermanentFailure, TransientFailure
from radassist.models.openai_backend import OpenAIDraftModel
from radassist.states import TurnState
from tests.conversation.conftest import Drafted
from tests.conversation.openai_stream_standin import Script, create_app
from tests.drafting.openai_standin import serve

SERVED = "site-vlm"
REPORT = "Findings: The lungs are clear. Impression: No acute abnormality."


@pytest.fixture
def server() -> Iterator[tuple[Script, str]]:
    script = Script(REPORT)
    with serve(create_app(script, SERVED)) as url:
        yield script, url


def _chat(url: str) -> OpenAIChat:
    chat = chat_for(OpenAIDraftModel(ModelSettings(name=SERVED, backend="openai", url=url)))
    assert isinstance(chat, OpenAIChat)
    return chat


CONVERSATION = Conversation(images=(Image.new("RGB", (16, 12), (9, 9, 9)),), labels=("PA",),
                            draft_prompt="Draft a report.", draft_text="Findings: x. Impression: y.",
                            earlier=(Exchange("Any effusion?", "No."),), question="Is there a pneumothorax?")


def test_the_answer_comes_piece_by_piece(server: tuple[Script, str]) -> None:
    script, url = server
    end = StreamEnd()
    pieces = list(_chat(url).stream(CONVERSATION, max_new_tokens=99, time_limit_s=30, end=end))
    assert "".join(pieces) == REPORT and len(pieces) == len(REPORT.split())
    assert end.stopped == "eos" and end.new_tokens == len(REPORT.split())
    [body] = script.seen
    assert body["stream"] is True and body["max_tokens"] == 99 and body["temperature"] == 0.0
    first, *rest = body["messages"]
    assert first["role"] == "user"
    assert [item["type"] for item in first["content"]] == ["text", "image_url", "text"]
    assert first["content"][0]["text"] == "Image 1: PA" and first["content"][2]["text"] == "Draft a report."
    url_value = first["content"][1]["image_url"]["url"]
    assert url_value.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url_value.partition(",")[2])))
    assert sent.size == (16, 12) and sent.getpixel((0, 0)) == (9, 9, 9)  # the kept picture, losslessly
    assert [(m["role"], m["content"]) for m in rest][:2] == [("assistant", "Findings: x. Impression: y."),
                                                             ("user", rest[1]["content"])]
    assert rest[1]["content"].endswith("Question: Any effusion?")
    assert [(m["role"], m["content"]) for m in rest[2:]] == [("assistant", "No."), ("user", "Is there a pneumothorax?")]


def test_length_and_time_limits_end_the_answer_where_it_got(server: tuple[Script, str]) -> None:
    script, url = server
    script.finish_reason = "length"
    end = StreamEnd()
    assert "".join(_chat(url).stream(CONVERSATION, max_new_tokens=5, time_limit_s=30, end=end)) == REPORT
    assert end.stopped == "max_new_tokens"
    script.finish_reason, script.pause_s = "stop", 0.4
    end = StreamEnd()
    partial = "".join(_chat(url).stream(CONVERSATION, max_new_tokens=99, time_limit_s=1.0, end=end))
    assert end.stopped == "time_limit" and partial and REPORT.startswith(partial) and partial != REPORT


@pytest.mark.parametrize(("status", "garbage", "error", "code"), [
    (503, False, TransientFailure, "model.server_busy"),
    (429, False, TransientFailure, "model.server_busy"),
    (400, False, PermanentFailure, "model.server_rejected"),
    (200, True, PermanentFailure, "model.server_rejected"),
])
def test_failures_are_classified_as_for_drafts(server: tuple[Script, str], status: int, garbage: bool,
                                               error: type[Exception], code: str) -> None:
    script, url = server
    script.status, script.garbage = status, garbage
    with pytest.raises(error) as caught:
        list(_chat(url).stream(CONVERSATION, max_new_tokens=9, time_limit_s=30, end=StreamEnd()))
    assert caught.value.code == code  # type: ignore[attr-defined]


def test_a_server_that_is_down_is_a_transient_failure() -> None:
    from tests.conftest import free_port

    chat = _chat(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(TransientFailure) as caught:
        list(chat.stream(CONVERSATION, max_new_tokens=9, time_limit_s=5, end=StreamEnd()))
    assert caught.value.code == "model.server_unreachable"


def test_a_question_about_a_study_drafted_by_a_served_model(make_drafted: Callable[..., Drafted],
                                                            server: tuple[Script, str]) -> None:
    from workers.tasks.answer import answer_question

    script, url = server
    drafted = make_drafted(model_backend="openai", model_url=url, model_name=SERVED,
                           conversation_stream_write_interval_s="0")
    assert script.seen[0].get("stream") is None  # the draft: one whole completion
    asked = drafted.ask("Is there a pneumothorax?")
    answer_question.apply(args=(str(uuid.uuid4()),)).get()
    with drafted.sessions() as session:
        turn = session.get(ConversationTurn, asked.turn_id)
        assert turn is not None and turn.state is TurnState.ANSWERED, (turn.error_code if turn else None)
        assert turn.answer == REPORT and turn.model_name == SERVED
        assert turn.generation["backend"] == "openai" and turn.generation["streamed"] is True
        assert turn.generation["partial_writes"] == len(REPORT.split())  # each piece saved as it came
    assert script.seen[-1]["stream"] is True
