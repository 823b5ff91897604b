"""A TEST STAND-IN for an OpenAI-compatible server (vLLM, SGLang, TGI) that streams.

It answers ``/v1/chat/completions`` with a scripted text: whole (one JSON completion) or, with
``"stream": true``, as server-sent events -- one ``data:`` chunk per word with
``choices[0].delta.content``, a last chunk with ``finish_reason`` and ``usage``, then ``data:
[DONE]`` -- the part of the protocol RadAssist uses.  It records every request body, and can be
told to fail (an HTTP status, or a stream that is not JSON) or to pause between chunks.  Production
sites run a real inference server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse


@dataclass
class Script:
    text: str
    finish_reason: str = "stop"
    status: int = 200
    garbage: bool = False
    pause_s: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)


def create_app(script: Script, served_name: str) -> FastAPI:
    app = FastAPI()

    async def chunks(words: list[str]) -> AsyncIterator[str]:
        if script.garbage:
            yield "data: {not json\n\n"
            return
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece},
                                                                      "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            if script.pause_s:
                await asyncio.sleep(script.pause_s)
        last = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {},
                                                                 "finish_reason": script.finish_reason}],
                "usage": {"completion_tokens": len(words), "prompt_tokens": 0, "total_tokens": len(words)}}
        yield f"data: {json.dumps(last)}\n\n"
        yield "data: [DONE]\n\n"

    @app.post("/v1/chat/completions", response_model=None)
    def chat(body: dict[str, Any]) -> dict[str, Any] | StreamingResponse:
        script.seen.append(body)
        if script.status != 200:
            raise HTTPException(status_code=script.status, detail="scripted failure")
        if body.get("model") != served_name:
            raise HTTPException(status_code=404, detail="model not found")
        if body.get("stream"):
            return StreamingResponse(chunks(script.text.split()), media_type="text/event-stream")
        return {"object": "chat.completion", "model": served_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": script.text},
                             "finish_reason": script.finish_reason}],
                "usage": {"completion_tokens": len(script.text.split())}}

    return app
