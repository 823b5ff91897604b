"""What the model is given for one answer, and how it is fitted into the model's context budget.

The conversation continues the draft: the first user turn is the draft's own -- the same pictures
with their labels and the exact prompt the draft was written from (the clinical context, the RIS
order and, where the draft had one, the prior) -- and the model's reply to it is the draft itself.
Then come the earlier questions and answers of this radiologist's conversation about that draft,
oldest first, and the new question, preceded once by what is asked of the model now.

When the whole does not fit the budget (prompt and pictures plus room for the answer), the oldest
earlier turns are left out, one by one; the model is told how many, and so is the radiologist.
The pictures, the draft and the question are never left out: if they alone do not fit, the
question cannot be answered (``conversation.too_long``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from radassist.errors import PermanentFailure

PROMPT_VERSION = "c1"
"""Bump on any change to the wording below: it is stored with each answer (after the draft's version)."""

INSTRUCTION = (
    "The radiologist reviewing your draft now asks about this study. Answer the question briefly, "
    "from the images and the information above only. Say so when the images cannot show what is asked, "
    "and do not invent findings, measurements or history."
)


@dataclass(frozen=True)
class Exchange:
    """An earlier question and the model's answer to it."""

    question: str
    answer: str


@dataclass(frozen=True)
class Conversation:
    """Everything the model is given for one answer, in order."""

    images: tuple[Image.Image, ...]
    labels: tuple[str, ...]
    draft_prompt: str
    draft_text: str
    earlier: tuple[Exchange, ...]
    question: str
    left_out: int = 0
    """Earlier exchanges not shown (oldest first), for lack of room."""


@dataclass(frozen=True)
class ChatTurn:
    """One message of the chat: who speaks and what; the first user turn also carries the pictures."""

    role: str
    text: str
    with_pictures: bool = False


def instruction(left_out: int) -> str:
    """What the model is asked, and how many earlier turns it does not see."""
    if not left_out:
        return INSTRUCTION
    which = "earliest question and answer" if left_out == 1 else f"{left_out} earliest questions and answers"
    return f"{INSTRUCTION} (The {which} of this conversation are not shown here, for lack of room.)"


def chat_turns(conversation: Conversation) -> list[ChatTurn]:
    """The conversation as chat messages, alternating user and assistant, ending with the question."""
    turns = [ChatTurn("user", conversation.draft_prompt, with_pictures=True),
             ChatTurn("assistant", conversation.draft_text)]
    preface = instruction(conversation.left_out) + "\n\nQuestion: "
    for index, exchange in enumerate(conversation.earlier):
        turns.append(ChatTurn("user", (preface if index == 0 else "") + exchange.question))
        turns.append(ChatTurn("assistant", exchange.answer))
    turns.append(ChatTurn("user", (preface if not conversation.earlier else "") + conversation.question))
    return turns


def prompt_text(conversation: Conversation) -> str:
    """The conversation as stored with the answer: each picture named by its place and label."""
    pictures = [f"[image {i + 1}{': ' + label if label else ''}]"
                for i, label in enumerate(conversation.labels or ("",) * len(conversation.images))]
    blocks = []
    for turn in chat_turns(conversation):
        text = "\n".join([*pictures, turn.text]) if turn.with_pictures else turn.text
        blocks.append(f"<{turn.role}>\n{text}")
    return "\n\n".join(blocks)


def flat_prompt(conversation: Conversation) -> str:
    """The whole conversation as one instruction after the pictures, for backends without chat turns."""
    parts = [conversation.draft_prompt, f"Your draft:\n{conversation.draft_text}", instruction(conversation.left_out)]
    for exchange in conversation.earlier:
        parts.append(f"Question: {exchange.question}\nAnswer: {exchange.answer}")
    parts.append(f"Question: {conversation.question}\nAnswer:")
    return "\n\n".join(parts)


def fit(conversation: Conversation, *, budget: int, answer_tokens: int,
        count: Callable[[Conversation], int], count_text: Callable[[str], int]) -> tuple[Conversation, int]:
    """The conversation with as few of its oldest earlier exchanges left out as the budget needs, and
    its length in tokens.

    ``count`` measures a whole conversation in the model's tokens (pictures included) and is called
    a few times only; ``count_text`` measures one exchange's words, to choose how many to leave out
    before measuring again.
    """
    room = budget - answer_tokens
    total = count(conversation)
    while total > room and conversation.earlier:
        excess, leave = total - room, 0
        while excess > 0 and leave < len(conversation.earlier):
            exchange = conversation.earlier[leave]
            excess -= count_text(exchange.question) + count_text(exchange.answer)
            leave += 1
        conversation = dataclasses.replace(conversation, earlier=conversation.earlier[max(leave, 1):],
                                           left_out=conversation.left_out + max(leave, 1))
        total = count(conversation)
    if total > room:
        raise PermanentFailure(
            f"the pictures, the draft and the question need {total} tokens, more than the {room} the model's "
            "context leaves before its answer; ask a shorter question", code="conversation.too_long")
    return conversation, total
