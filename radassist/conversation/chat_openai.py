"""Answering through an OpenAI-compatible server (vLLM, SGLang, TGI), streamed.

One chat completion with ``stream: true``: the server sends server-sent events, each ``data:``
line a chunk whose ``choices[0].delta.content`` is the next piece of text, until ``data: [DONE]``.
The first user turn carries the pictures exactly as the draft's request did
(:func:`radassist.models.openai_backend.chat_messages`: PNG ``data:`` URLs after their labels); the
later turns are text.  The only connection made is to ``[model] url``.

Failures are classified as the draft's are: no connection, a timeout, 429 or a 5xx is transient;
another 4xx or a malformed stream is permanent.  The time limit is checked between pieces: an
answer still being written when it runs out is kept as far as it got.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from radassist.config import ModelSettings
from radassist.conversation.chat import StreamEnd, estimate_conversation, estimate_tokens, grammar_steps
from radassist.conversation.context import Conversation, chat_turns
from radassist.errors import PermanentFailure, TransientFailure
from radassist.grounding.geometry import Size, Step
from radassist.grounding.registry import BoxGrammar, grammar_for_model
from radassist.models.base import DraftRequest, GenerationBackend
from radassist.models.openai_backend import chat_messages


class OpenAIChat:
    """A client of the served drafting model, asking it questions."""

    def __init__(self, backend: GenerationBackend) -> None:
        served: Any = backend  # an OpenAIDraftModel: its settings name the server
        self.backend = served
        self.settings: ModelSettings = served.settings
        self.name: str = backend.name
        self.revision: str | None = backend.revision

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "url_host": httpx.URL(self.settings.url).host, "temperature": 0.0,
                "streamed": True}

    def context_limit(self) -> int | None:
        return None

    def count(self, conversation: Conversation) -> int:
        return estimate_conversation(conversation)

    def count_text(self, text: str) -> int:
        return estimate_tokens(text)

    def messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for turn in chat_turns(conversation):
            if turn.with_pictures:
                messages += chat_messages(DraftRequest(conversation.images, turn.text, conversation.labels))
            else:
                messages.append({"role": turn.role, "content": turn.text})
        return messages

    def _client(self, time_limit_s: float) -> httpx.Client:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = self.settings.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = min(self.settings.request_timeout_s, time_limit_s)
        return httpx.Client(base_url=self.settings.url.rstrip("/"), headers=headers,
                            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)))

    def stream(self, conversation: Conversation, *, max_new_tokens: int, time_limit_s: float,
               end: StreamEnd) -> Iterator[str]:
        body = {"model": self.name, "messages": self.messages(conversation), "max_tokens": max_new_tokens,
                "temperature": 0.0, "n": 1, "stream": True}
        deadline = time.monotonic() + time_limit_s
        try:
            with self._client(time_limit_s) as client, client.stream("POST", "/chat/completions", json=body) as response:
                _check_status(response)
                yield from _pieces(response.iter_lines(), deadline, end)
        except httpx.TimeoutException:
            raise TransientFailure("the model server did not answer in time", code="model.server_timeout") from None
        except httpx.TransportError as exc:
            raise TransientFailure(f"the model server cannot be reached ({type(exc).__name__})",
                                   code="model.server_unreachable") from None

    def box_grammar(self) -> BoxGrammar | None:
        return grammar_for_model(self.name)

    def picture_steps(self, size: Size) -> tuple[Step, ...]:
        return grammar_steps(self.box_grammar(), size)


def _check_status(response: httpx.Response) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientFailure(f"the model server answered HTTP {response.status_code}", code="model.server_busy")
    if response.status_code >= 400:
        raise PermanentFailure(f"the model server refused the request (HTTP {response.status_code})",
                               code="model.server_rejected")


def _pieces(lines: Iterator[str], deadline: float, end: StreamEnd) -> Iterator[str]:
    """The text of each ``data:`` chunk; fills ``end`` from the finish reason and usage."""
    pieces = 0
    for line in lines:
        if time.monotonic() >= deadline:
            end.stopped = "time_limit"
            break
        if not line.startswith("data:"):
            continue  # blank separators, comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            chunk = json.loads(data)
            choices = chunk.get("choices") or []
            usage = chunk.get("usage") or {}
            delta = (choices[0].get("delta") or {}) if choices else {}
            finish = choices[0].get("finish_reason") if choices else None
            text = delta.get("content") or ""
        except (ValueError, AttributeError, IndexError, TypeError):
            raise PermanentFailure("the model server's stream is not a chat completion stream",
                                   code="model.server_rejected") from None
        if not isinstance(text, str):
            raise PermanentFailure("the model server's answer is not text", code="model.output_not_text")
        if finish == "length":
            end.stopped = "max_new_tokens"
        if usage.get("completion_tokens") is not None:
            end.new_tokens = int(usage["completion_tokens"])
        if text:
            pieces += 1
            yield text
    if end.new_tokens is None:
        end.new_tokens = pieces
