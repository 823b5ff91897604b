"""Questions answered on the drafting worker with a scripted tiny model, against a real database:
what the model is given, the answer streamed into the turn's row, limits and failures."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from radassist.db.tables import AuditEntry, ConversationTurn, Draft
from radassist.models.prompts import PROMPT_VERSION as DRAFT_PROMPT_VERSION
from radassist.states import TurnState
from radassist.store.prepared import prepared_store
from tests.conversation.conftest import ANSWER, Drafted


def _turn(drafted: Drafted, turn_id: uuid.UUID | None) -> ConversationTurn:
    assert turn_id is not None
    with drafted.sessions() as session:
        turn = session.get(ConversationTurn, turn_id)
        assert turn is not None
        session.expunge(turn)
        return turn


def _answer() -> None:
    from workers.tasks.answer import answer_question

    answer_question.apply(args=(str(uuid.uuid4()),)).get()


def test_a_question_is_answered_from_the_drafts_pictures_prompt_and_text(make_drafted: Callable[..., Drafted]) -> None:
    drafted = make_drafted()
    assert prepared_store(drafted.settings).load(drafted.job_id) is not None  # kept when the draft was stored
    first = drafted.ask("Is there a pneumothorax?")
    assert first.status == 202 and first.ok
    assert _turn(drafted, first.turn_id).state is TurnState.PENDING
    _answer()
    turn = _turn(drafted, first.turn_id)
    assert turn.state is TurnState.ANSWERED, (turn.error_code, turn.error_message)
    assert turn.answer == ANSWER
    with drafted.sessions() as session:
        draft = session.get(Draft, drafted.draft_id)
        assert draft is not None
        # The conversation continues the draft: its prompt (pictures named), its text, then the question.
        assert draft.prompt in turn.prompt and draft.raw_text in (turn.prompt or "")
        assert "[image 1: PA]" in (turn.prompt or "")
        assert turn.prompt.rstrip().endswith("Question: Is there a pneumothorax?")  # type: ignore[union-attr]
    assert turn.model_name and turn.model_name.endswith("gemma3") and turn.prompt_version == f"{DRAFT_PROMPT_VERSION}+c1"
    assert turn.generation["pictures_from"] == "kept" and turn.generation["images"] == 1
    assert turn.generation["stopped"] == "eos" and turn.generation["ai_generated"] is True
    assert turn.generation["partial_writes"] >= 1 and turn.turns_left_out == 0
    assert turn.started_at and turn.first_text_at and turn.answered_at
    assert turn.asked_at <= turn.started_at <= turn.first_text_at <= turn.answered_at

    second = drafted.ask("Which side is the effusion?")
    assert second.status == 202
    _answer()
    later = _turn(drafted, second.turn_id)
    assert later.state is TurnState.ANSWERED and later.number == 2
    prompt = later.prompt or ""
    # The conversation so far comes before the new question, in order.
    assert prompt.index("Is there a pneumothorax?") < prompt.index(ANSWER, prompt.index("Is there a pneumothorax?"))
    assert prompt.rstrip().endswith("Which side is the effusion?")
    with drafted.sessions() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "conversation.ask")
                                  .order_by(AuditEntry.id)).all()
        assert [a.detail["question"] for a in audited] == ["Is there a pneumothorax?", "Which side is the effusion?"]
        assert {a.target for a in audited} == {str(drafted.study_id)} and {a.user_name for a in audited} == {"rad"}


def test_the_answer_is_written_into_the_row_as_it_comes(make_drafted: Callable[..., Drafted]) -> None:
    """Every piece the streamer gives is saved (interval 0): the row holds the growing answer."""
    drafted = make_drafted(conversation_stream_write_interval_s="0")
    asked = drafted.ask("Is there a pneumothorax?")
    engine = drafted.sessions.kw["bind"]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE CONVERSATION_TURNS") and "answer" in statement:
            values = parameters if isinstance(parameters, (list, tuple)) else list(parameters.values())
            seen.extend(v for v in values if isinstance(v, str) and v and ANSWER.startswith(v))

    from workers.base import reset_sessionmaker

    reset_sessionmaker()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        _answer()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    turn = _turn(drafted, asked.turn_id)
    assert turn.state is TurnState.ANSWERED
    partial = [text for text in seen if text != ANSWER]
    assert len(partial) >= 2, seen  # the streamer's pieces, each saved before the answer was complete
    assert all(len(a) < len(b) for a, b in zip(partial, partial[1:], strict=False))
    assert turn.generation["partial_writes"] >= 3
    assert engine is not None


def test_older_turns_that_do_not_fit_are_left_out_and_the_answer_says_so(
    make_drafted: Callable[..., Drafted],
) -> None:
    words = " Is there anything else on this image that a radiologist should look at again?" * 3
    questions = ("First question." + words, "Second question." + words, "Third question." + words)
    roomy = make_drafted(conversation_max_answer_tokens="64")
    tokens = []
    for question in questions[:2]:
        asked = roomy.ask(question)
        _answer()
        tokens.append(_turn(roomy, asked.turn_id).generation["prompt_tokens"])
    exchange = tokens[1] - tokens[0]
    assert exchange > 0
    # One token short of room for two earlier exchanges: the third question leaves the first out (the
    # note saying so fits in what that frees).
    tight = make_drafted(conversation_max_answer_tokens="64",
                         conversation_context_tokens=str(64 + tokens[1] + exchange - 1))
    answers = []
    for question in questions:
        asked = tight.ask(question)
        _answer()
        answers.append(_turn(tight, asked.turn_id))
    assert [t.state for t in answers] == [TurnState.ANSWERED] * 3, [(t.error_code, t.error_message) for t in answers]
    assert [t.turns_left_out for t in answers] == [0, 0, 1]
    prompt = answers[2].prompt or ""
    assert "First question." not in prompt and "Second question." in prompt and "Third question." in prompt
    assert "(The earliest question and answer of this conversation are not shown here, for lack of room.)" in prompt
    assert answers[2].generation["prompt_tokens"] <= answers[2].generation["context_budget"] - 64


def test_a_question_that_cannot_fit_fails_with_the_reason(make_drafted: Callable[..., Drafted]) -> None:
    drafted = make_drafted(conversation_max_answer_tokens="64", conversation_context_tokens="100")
    asked = drafted.ask("Is there a pneumothorax?")
    _answer()
    turn = _turn(drafted, asked.turn_id)
    assert turn.state is TurnState.FAILED and turn.error_code == "conversation.too_long"
    assert "tokens" in (turn.error_message or "")


def test_a_model_that_cannot_be_loaded_gives_a_clear_reason(make_drafted: Callable[..., Drafted],
                                                            tmp_path: Any) -> None:
    drafted = make_drafted()
    with drafted.sessions.begin() as session:  # the pipeline now names a model folder that is not there
        session.execute(sa.update(sa.table("jobs", sa.column("model_name"))).values(model_name=str(tmp_path / "gone")))
    asked = drafted.ask("Is there a pneumothorax?")
    _answer()
    turn = _turn(drafted, asked.turn_id)
    assert turn.state is TurnState.FAILED and turn.error_code == "model.unavailable"
    assert "model folder not found" in (turn.error_message or "")


def test_pictures_are_prepared_again_when_none_were_kept(make_drafted: Callable[..., Drafted]) -> None:
    drafted = make_drafted()
    files, size = prepared_store(drafted.settings).remove(drafted.job_id)
    assert files == 2 and size > 0  # the manifest and the one picture
    asked = drafted.ask("Is there a pneumothorax?")
    _answer()
    turn = _turn(drafted, asked.turn_id)
    assert turn.state is TurnState.ANSWERED and turn.generation["pictures_from"] == "prepared again"
    # Without the stored instances either, the radiologist is told why.
    for path in drafted.settings.storage.instances_dir.rglob("*.dcm"):
        path.unlink()
    later = drafted.ask("And now?")
    _answer()
    failed = _turn(drafted, later.turn_id)
    assert failed.state is TurnState.FAILED and failed.error_code == "conversation.no_pictures"


@pytest.mark.parametrize("state", [TurnState.ANSWERING, TurnState.ANSWERED, TurnState.FAILED])
def test_a_turn_not_waiting_is_not_answered_again(make_drafted: Callable[..., Drafted], state: TurnState) -> None:
    drafted = make_drafted()
    asked = drafted.ask("Is there a pneumothorax?")
    with drafted.sessions.begin() as session:
        session.execute(sa.update(ConversationTurn).values(state=state, answer="kept as it was"))
    _answer()
    turn = _turn(drafted, asked.turn_id)
    assert turn.state is state and turn.answer == "kept as it was" and turn.started_at is None
