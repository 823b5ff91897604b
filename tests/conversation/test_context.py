"""What the model is given, in order, and how the oldest turns give way to the context budget."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from radassist.conversation.context import (
    INSTRUCTION,
    Conversation,
    Exchange,
    chat_turns,
    fit,
    flat_prompt,
    prompt_text,
)
from radassist.errors import PermanentFailure

PICTURES = (Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8)))


def conversation(earlier: int = 0, words: int = 0) -> Conversation:
    more = " and" * words
    return Conversation(images=PICTURES, labels=("PA", "LL"), draft_prompt="Draft a report.",
                        draft_text="Findings: clear. Impression: normal.",
                        earlier=tuple(Exchange(f"Q{i}?{more}", f"A{i}.{more}") for i in range(1, earlier + 1)),
                        question="Now?")


def test_the_conversation_continues_the_draft() -> None:
    turns = chat_turns(conversation(2))
    assert [(t.role, t.with_pictures) for t in turns] == [
        ("user", True), ("assistant", False), ("user", False), ("assistant", False), ("user", False),
        ("assistant", False), ("user", False)]
    assert turns[0].text == "Draft a report." and turns[1].text == "Findings: clear. Impression: normal."
    assert turns[2].text == f"{INSTRUCTION}\n\nQuestion: Q1?"  # what is asked now, said once
    assert [t.text for t in turns[3:]] == ["A1.", "Q2?", "A2.", "Now?"]
    alone = chat_turns(conversation(0))
    assert alone[-1].text == f"{INSTRUCTION}\n\nQuestion: Now?"


def test_the_stored_prompt_names_each_picture_and_every_turn() -> None:
    text = prompt_text(conversation(1))
    assert text.startswith("<user>\n[image 1: PA]\n[image 2: LL]\nDraft a report.")
    assert text.index("<assistant>\nFindings:") < text.index("Q1?") < text.index("A1.") < text.index("Now?")
    flat = flat_prompt(conversation(1))
    assert flat.endswith("Question: Q1?\nAnswer: A1.\n\nQuestion: Now?\nAnswer:")


def _words(c: Conversation) -> int:
    return len(prompt_text(c).split())


def test_the_oldest_turns_give_way_and_the_model_is_told() -> None:
    full = conversation(4, words=30)
    fitted, tokens = fit(full, budget=_words(full) + 10, answer_tokens=10, count=_words,
                         count_text=lambda t: len(t.split()))
    assert fitted is full and tokens == _words(full)
    two_left_out = dataclasses.replace(full, earlier=full.earlier[2:], left_out=2)
    fitted, tokens = fit(full, budget=_words(two_left_out) + 10, answer_tokens=10, count=_words,
                         count_text=lambda t: len(t.split()))
    assert [e.question.split()[0] for e in fitted.earlier] == ["Q3?", "Q4?"] and fitted.left_out == 2
    assert tokens == _words(two_left_out)
    assert "(The 2 earliest questions and answers of this conversation are not shown here, for lack of room.)" \
        in chat_turns(fitted)[2].text


def test_a_question_that_cannot_fit_even_alone_is_refused() -> None:
    with pytest.raises(PermanentFailure) as caught:
        fit(conversation(3), budget=_words(conversation(0)), answer_tokens=10, count=_words,
            count_text=lambda t: len(t.split()))
    assert caught.value.code == "conversation.too_long"
