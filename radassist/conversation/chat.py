"""The drafting model, asked a question: one small interface over every backend.

A loaded drafting backend (:mod:`radassist.models.loader`: the same instance, weights loaded once
per worker process) is wrapped by :func:`chat_for`:

* the in-process transformers backend streams with transformers' ``TextIteratorStreamer``
  (:mod:`radassist.conversation.chat_transformers`) and counts tokens with the model's own processor;
* the OpenAI-compatible backend streams with ``stream: true`` (:mod:`radassist.conversation.chat_openai`);
* any other backend (a site adapter) answers through its ``generate`` with the conversation as one
  instruction: the answer then appears at once, when it is complete.

Every answer is greedy, like the drafts: the same question about the same study gets the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from radassist.conversation.context import Conversation, flat_prompt
from radassist.errors import PermanentFailure
from radassist.grounding.geometry import Size, Step
from radassist.grounding.registry import BoxGrammar, grammar_for_model
from radassist.models.base import DraftRequest, GenerationBackend, StopReason

DEFAULT_CONTEXT_TOKENS = 8192
"""The budget when neither ``[conversation] context_tokens`` nor the model's configuration gives one."""
IMAGE_TOKENS_ESTIMATE = 1024
"""Tokens counted per picture where the backend cannot measure them (a served model, an adapter)."""
CHARS_PER_TOKEN_ESTIMATE = 3
"""Characters counted per token where the backend cannot measure them (fewer than most tokenizers
take, so the estimate errs towards leaving a turn out)."""


@dataclass
class StreamEnd:
    """Filled in as an answer's stream ends: its length in tokens and why it stopped."""

    new_tokens: int | None = None
    stopped: StopReason = "eos"


class ChatModel(Protocol):
    """What answering needs of a model, whatever runs it."""

    name: str
    revision: str | None

    def describe(self) -> dict[str, Any]: ...

    def context_limit(self) -> int | None:
        """The model's context length in tokens, when known."""
        ...

    def count(self, conversation: Conversation) -> int:
        """The conversation's length in tokens, pictures included."""
        ...

    def count_text(self, text: str) -> int: ...

    def stream(self, conversation: Conversation, *, max_new_tokens: int, time_limit_s: float,
               end: StreamEnd) -> Iterator[str]:
        """The answer's text as it is written, piece by piece; ``end`` is filled in when it stops."""
        ...

    def box_grammar(self) -> BoxGrammar | None:
        """The grammar the model writes boxes in, if it localises."""
        ...

    def picture_steps(self, size: Size) -> tuple[Step, ...]:
        """How the model's processor resizes or crops a picture of ``size`` before its encoder sees it."""
        ...


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN_ESTIMATE + 1


def estimate_conversation(conversation: Conversation) -> int:
    """An estimate for backends that cannot count: every word of every turn, and a fixed cost per picture."""
    words = [conversation.draft_prompt, conversation.draft_text, conversation.question,
             *(t for e in conversation.earlier for t in (e.question, e.answer))]
    return sum(estimate_tokens(w) for w in words) + IMAGE_TOKENS_ESTIMATE * len(conversation.images) + 64


class GenerateChat:
    """A backend without streaming or chat turns: the conversation as one instruction, answered whole."""

    def __init__(self, backend: GenerationBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.revision = backend.revision

    def describe(self) -> dict[str, Any]:
        return {**self.backend.describe(), "streamed": False}

    def context_limit(self) -> int | None:
        return None

    def count(self, conversation: Conversation) -> int:
        return estimate_conversation(conversation)

    def count_text(self, text: str) -> int:
        return estimate_tokens(text)

    def stream(self, conversation: Conversation, *, max_new_tokens: int, time_limit_s: float,
               end: StreamEnd) -> Iterator[str]:
        request = DraftRequest(conversation.images, flat_prompt(conversation), conversation.labels)
        [generation] = self.backend.generate([request])
        end.new_tokens, end.stopped = generation.new_tokens, generation.stopped
        yield generation.text

    def box_grammar(self) -> BoxGrammar | None:
        return grammar_for_model(self.name)

    def picture_steps(self, size: Size) -> tuple[Step, ...]:
        return grammar_steps(self.box_grammar(), size)


def grammar_steps(grammar: BoxGrammar | None, size: Size) -> tuple[Step, ...]:
    """A localising model's own picture sizing, where only its grammar is known (no processor at hand)."""
    from radassist.grounding.processors import maira_2_steps, qwen2_vl_resize

    if grammar is BoxGrammar.QWEN2_5_VL:
        return (qwen2_vl_resize(size),)
    if grammar is BoxGrammar.MAIRA_2:
        return maira_2_steps(size)
    return ()


def chat_for(backend: GenerationBackend) -> ChatModel:
    """The chat interface of a loaded drafting backend (see the module docstring)."""
    kind = getattr(backend, "backend", None)
    if kind == "transformers":
        from radassist.conversation.chat_transformers import TransformersChat

        return TransformersChat(backend)
    if kind == "openai":
        from radassist.conversation.chat_openai import OpenAIChat

        return OpenAIChat(backend)
    if not callable(getattr(backend, "generate", None)):
        raise PermanentFailure("the model backend cannot answer questions", code="conversation.unsupported")
    return GenerateChat(backend)


def deadline_after(seconds: float) -> Callable[[], bool]:
    """A check that says whether ``seconds`` have passed since it was made."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end
