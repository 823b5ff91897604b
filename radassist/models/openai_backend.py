"""Drafting through an OpenAI-compatible server (vLLM, SGLang, TGI serve VLMs this way).

The worker sends each study as one chat completion: a user turn with the images as base64
``data:image/png`` URLs (PNG: lossless, so the server sees exactly the pixels we prepared), each
after its label, then the instruction; greedy (``temperature`` 0) and capped at
``[model] max_new_tokens``.  Requests of one batch run in parallel up to ``[model] concurrency``
per worker process, each with ``[model] request_timeout_s``.  ``finish_reason == "length"`` is a
draft cut off at the token limit, which the output checks then judge.

Failures are classified by what a retry can change: no connection, a timeout, 429 or a 5xx is
transient (the server may be restarting or busy); any other 4xx or a malformed answer is
permanent (the request or the configuration is wrong).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from PIL import Image

from radassist.config import ModelSettings
from radassist.errors import PermanentFailure, RadAssistError, TransientFailure
from radassist.grounding import BoxGrammar
from radassist.imaging.prepare import PreparedStudy
from radassist.models.base import DraftRequest, DraftResult, Generation, StopReason
from radassist.models.drafting import DraftInput, draft_one
from radassist.models.grounded import resolve_grammar

logger = logging.getLogger(__name__)


def image_data_url(image: Image.Image) -> str:
    """A PNG ``data:`` URL of ``image``."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_messages(request: DraftRequest) -> list[dict[str, Any]]:
    """The OpenAI multi-image chat format: labels and images interleaved, then the instruction."""
    content: list[dict[str, Any]] = []
    for index, image in enumerate(request.images):
        if index < len(request.labels) and request.labels[index]:
            content.append({"type": "text", "text": f"Image {index + 1}: {request.labels[index]}"})
        content.append({"type": "image_url", "image_url": {"url": image_data_url(image)}})
    content.append({"type": "text", "text": request.prompt})
    return [{"role": "user", "content": content}]


class OpenAIDraftModel:
    """A client of one served model; no weights in this process."""

    backend = "openai"

    def __init__(self, settings: ModelSettings) -> None:
        if not settings.url:
            raise PermanentFailure("[model] url is not set for the openai backend", code="model.unavailable")
        self.settings = settings
        self.name = settings.name
        self.revision: str | None = settings.revision or None
        headers = {"Content-Type": "application/json"}
        key = settings.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = min(settings.request_timeout_s, settings.generation_time_limit_s)
        self._client = httpx.Client(
            base_url=settings.url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=settings.concurrency),
        )
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        # The served model's processor is not visible here: its boxes are mapped with the stock one's sizing.
        self.box_grammar: BoxGrammar | None = resolve_grammar(settings.box_grammar, settings.name)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "url_host": httpx.URL(self.settings.url).host,
            "max_new_tokens": self.settings.max_new_tokens,
            "do_sample": False,
            "temperature": 0.0,
            "time_limit_s": min(self.settings.request_timeout_s, self.settings.generation_time_limit_s),
        }

    def _post(self, request: DraftRequest) -> Generation:
        body = {
            "model": self.name,
            "messages": chat_messages(request),
            "max_tokens": self.settings.max_new_tokens,
            "temperature": 0.0,
            "n": 1,
        }
        with self._slots:
            started = time.perf_counter()
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                raise TransientFailure("the model server did not answer in time", code="model.server_timeout") from None
            except httpx.TransportError as exc:
                raise TransientFailure(
                    f"the model server cannot be reached ({type(exc).__name__})", code="model.server_unreachable"
                ) from None
            seconds = time.perf_counter() - started
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientFailure(f"the model server answered HTTP {response.status_code}", code="model.server_busy")
        if response.status_code >= 400:
            raise PermanentFailure(
                f"the model server refused the request (HTTP {response.status_code})", code="model.server_rejected"
            )
        try:
            choice = response.json()["choices"][0]
            text = choice["message"]["content"] or ""
            usage = response.json().get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError):
            raise PermanentFailure("the model server's answer is not a chat completion", code="model.server_rejected") from None
        if not isinstance(text, str):
            raise PermanentFailure("the model server's answer is not text", code="model.output_not_text")
        stopped: StopReason = "max_new_tokens" if choice.get("finish_reason") == "length" else "eos"
        tokens = int(usage.get("completion_tokens") or len(text.split()))
        return Generation(text, tokens, stopped, seconds, batch_size=1)

    def generate(self, requests: Sequence[DraftRequest]) -> list[Generation]:
        """One chat completion per request, up to ``concurrency`` at once; the first failure is raised."""
        if not requests or any(not r.images for r in requests):
            raise PermanentFailure("the study has no images to show the model", code="imaging.no_images")
        if len(requests) == 1:
            return [self._post(requests[0])]
        with ThreadPoolExecutor(max_workers=min(len(requests), self.settings.concurrency)) as pool:
            futures = [pool.submit(self._post, r) for r in requests]
            results: list[Generation] = []
            for future in futures:
                try:
                    results.append(future.result())
                except RadAssistError:
                    raise
        return results

    def draft(self, study: PreparedStudy) -> DraftResult:
        """Draft one study with the matching profile."""
        from radassist.models.profiles import select_profile

        return draft_one(self, DraftInput(study, select_profile(study.context, self.settings.profiles)))

    def close(self) -> None:
        self._client.close()
