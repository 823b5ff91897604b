"""A TEST STAND-IN for vLLM / SGLang / TGI: a minimal OpenAI-compatible ``/v1/chat/completions``
server that serves a tiny transformers model.

It exists only so the OpenAI backend can be tested end to end without a GPU or real weights.  It
implements the part of the protocol RadAssist uses (one user turn of text and ``image_url`` items
with base64 ``data:`` URLs, ``max_tokens``, ``temperature``, ``finish_reason``, ``usage``) and
nothing more.  Production sites run a real inference server.
"""

from __future__ import annotations

import base64
import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from PIL import Image

from radassist.config import ModelSettings
from radassist.models.base import DraftRequest
from radassist.models.transformers_backend import TransformersDraftModel
from tests.conftest import free_port, wait_for_port

_LABEL = re.compile(r"^Image \d+: (?P<label>.*)$")


def create_app(model_folder: str, served_name: str, api_key: str | None = None) -> FastAPI:
    app = FastAPI()
    models: dict[int, TransformersDraftModel] = {}
    seen: list[dict[str, Any]] = []
    app.state.seen = seen

    def model_for(max_tokens: int) -> TransformersDraftModel:
        if max_tokens not in models:
            models[max_tokens] = TransformersDraftModel(
                ModelSettings(name=model_folder, local_files_only=True, max_new_tokens=max_tokens)
            )
        return models[max_tokens]

    @app.post("/v1/chat/completions")
    def chat(body: dict[str, Any], authorization: str | None = Header(default=None)) -> dict[str, Any]:
        if api_key is not None and authorization != f"Bearer {api_key}":
            raise HTTPException(status_code=401, detail="bad key")
        if body.get("model") != served_name:
            raise HTTPException(status_code=404, detail="model not found")
        seen.append(body)
        images: list[Image.Image] = []
        labels: list[str] = []
        texts: list[str] = []
        pending_label = ""
        for item in body["messages"][-1]["content"]:
            if item["type"] == "image_url":
                url = item["image_url"]["url"]
                _, _, data = url.partition("base64,")
                images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
                labels.append(pending_label)
                pending_label = ""
            elif item["type"] == "text":
                match = _LABEL.match(item["text"])
                if match and not pending_label:
                    pending_label = match.group("label")
                else:
                    texts.append(item["text"])
        model = model_for(int(body.get("max_tokens") or 64))
        [generation] = model.generate([DraftRequest(tuple(images), "\n".join(texts), tuple(labels))])
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "model": served_name,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": generation.text},
                "finish_reason": "length" if generation.stopped == "max_new_tokens" else "stop",
            }],
            "usage": {"completion_tokens": generation.new_tokens, "prompt_tokens": 0, "total_tokens": 0},
        }

    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a free local port in a thread; yield its ``/v1`` base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
