"""An example site adapter, as README's "Adding a model adapter" describes.

A site whose model needs its own code (CheXagent, MAIRA-2 with ``trust_remote_code``) writes a
class like this in its own package: ``__init__(model_settings)`` loads the model, ``generate``
turns (images, prompt) pairs into text and says why each stopped.  This one drives a tiny
transformers model by hand -- processor, ``generate``, decode -- without RadAssist's backend.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
import transformers

from radassist.config import ModelSettings
from radassist.models.base import DraftRequest, Generation


class ExampleAdapter:
    def __init__(self, settings: ModelSettings) -> None:
        hf: Any = transformers
        self.name = settings.name
        self.revision: str | None = None
        self.max_new_tokens = settings.max_new_tokens
        self.processor = hf.AutoProcessor.from_pretrained(settings.name)
        self.model = hf.AutoModelForImageTextToText.from_pretrained(settings.name).eval()

    def describe(self) -> dict[str, Any]:
        return {"backend": "adapter:example", "max_new_tokens": self.max_new_tokens, "do_sample": False}

    def generate(self, requests: Sequence[DraftRequest]) -> list[Generation]:
        out = []
        for request in requests:
            content: list[dict[str, Any]] = [{"type": "image", "image": im} for im in request.images]
            content.append({"type": "text", "text": request.prompt})
            inputs = self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True,
                return_dict=True, return_tensors="pt",
            )
            started = time.perf_counter()
            with torch.inference_mode():
                tokens = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            new = tokens[0, inputs["input_ids"].shape[-1]:]
            text = self.processor.decode(new, skip_special_tokens=True)
            stopped = "max_new_tokens" if len(new) >= self.max_new_tokens else "eos"
            out.append(Generation(text, len(new), stopped, time.perf_counter() - started))  # type: ignore[arg-type]
        return out
