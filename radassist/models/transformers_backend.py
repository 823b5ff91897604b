"""Drafting with any Hugging Face image-text-to-text model (Gemma 3 / MedGemma, Qwen2.5-VL, ...).

The processor's own chat template places the images and the instruction, so the same code
serves every architecture whose processor has one.  Decoding is greedy: the same study and
settings give the same draft, which keeps retries idempotent and drafts auditable.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import torch
import transformers

from radassist.config import ModelSettings
from radassist.errors import PermanentFailure, TransientFailure
from radassist.imaging.prepare import PreparedStudy
from radassist.models.base import DraftResult
from radassist.models.postprocess import split_report
from radassist.models.prompts import PROMPT_VERSION, build_prompt

logger = logging.getLogger(__name__)

# transformers is only partly typed: its auto classes are used as plain callables.
_auto_processor: Any = transformers.AutoProcessor
_auto_model: Any = transformers.AutoModelForImageTextToText

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    """``auto`` is the first GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on a GPU and float32 on the CPU (CPU half precision is slow)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


class TransformersDraftModel:
    """A processor + model pair loaded with ``from_pretrained``, drafting by greedy ``generate``."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(settings.dtype, self.device)
        revision = settings.revision or None
        common: dict[str, Any] = {"revision": revision, "local_files_only": settings.local_files_only}
        self.processor: Any = _auto_processor.from_pretrained(settings.name, **common)
        self.model: Any = _auto_model.from_pretrained(settings.name, dtype=self.dtype, **common)
        self.model.to(self.device).eval()
        self.revision: str | None = revision or getattr(self.model.config, "_commit_hash", None)
        self._lock = threading.Lock()

    def _inputs(self, study: PreparedStudy, prompt: str) -> Any:
        content: list[dict[str, Any]] = [{"type": "image", "image": image} for image in study.images]
        content.append({"type": "text", "text": prompt})
        messages = [{"role": "user", "content": content}]
        inputs = self.processor.apply_chat_template(
            messages,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        return inputs.to(self.device, dtype=self.dtype)

    def draft(self, study: PreparedStudy) -> DraftResult:
        """Draft Findings and Impression for one prepared study."""
        if not study.images:
            raise PermanentFailure("the study has no images to show the model", code="imaging.no_images")
        prompt = build_prompt(study.context, len(study.images))
        max_new_tokens = self.settings.max_new_tokens
        with self._lock:
            try:
                inputs = self._inputs(study, prompt)
                prompt_tokens = int(inputs["input_ids"].shape[-1])
                started = time.perf_counter()
                with torch.inference_mode():
                    output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
                seconds = time.perf_counter() - started
            except torch.OutOfMemoryError:
                # Another job may hold the memory; a later attempt can succeed.
                raise TransientFailure("out of memory while drafting", code="model.out_of_memory") from None
            except Exception as exc:  # noqa: BLE001 -- messages may echo prompt text: keep only the class
                raise PermanentFailure(
                    f"drafting failed ({type(exc).__name__})", code="model.generation_failed"
                ) from None
        new_tokens = output[0, prompt_tokens:]
        raw_text = self.processor.decode(new_tokens, skip_special_tokens=True)
        findings, impression = split_report(raw_text)
        logger.info(
            "drafted %d new tokens from %d images in %.2f s",
            int(new_tokens.shape[-1]),
            len(study.images),
            seconds,
        )
        return DraftResult(
            findings=findings,
            impression=impression,
            raw_text=raw_text,
            prompt=prompt,
            prompt_version=PROMPT_VERSION,
            model_name=self.name,
            model_revision=self.revision,
            generation={
                "max_new_tokens": max_new_tokens,
                "do_sample": False,
                "seconds": round(seconds, 3),
                "new_tokens": int(new_tokens.shape[-1]),
                "prompt_tokens": prompt_tokens,
                "images": len(study.images),
                "device": str(self.device),
                "dtype": str(self.dtype).removeprefix("torch."),
            },
        )
