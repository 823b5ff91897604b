"""Drafting with any Hugging Face image-text-to-text model (Gemma 3 / MedGemma, Qwen2-VL / Qwen2.5-VL,
LLaVA, Idefics3 / SmolVLM...) in the worker process.

The processor's own chat template places the images and the instruction, so the same code
serves every architecture whose processor has one.  Decoding is greedy: the same study and
settings give the same draft, which keeps retries idempotent and drafts auditable.  Several
studies that queue up together go through one ``generate`` (left padding); when the GPU runs
out of memory the batch is halved and retried, and a single study that still does not fit is a
transient failure (another job may be holding the memory).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers

from radassist.config import ModelSettings
from radassist.errors import PermanentFailure, TransientFailure
from radassist.grounding import BoxGrammar, Size
from radassist.grounding.geometry import Step
from radassist.grounding.processors import processor_steps
from radassist.imaging.prepare import PreparedStudy
from radassist.models.base import DraftRequest, DraftResult, Generation, StopReason
from radassist.models.drafting import DraftInput, draft_one
from radassist.models.grounded import resolve_grammar
from radassist.models.identity import model_identity
from radassist.models.processors import load_processor

logger = logging.getLogger(__name__)

# transformers is only partly typed: its auto classes are used as plain callables.
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


def build_messages(request: DraftRequest) -> list[dict[str, Any]]:
    """One user turn: each image (after its label, when there is one), then the instruction."""
    content: list[dict[str, Any]] = []
    for index, image in enumerate(request.images):
        if index < len(request.labels) and request.labels[index]:
            content.append({"type": "text", "text": f"Image {index + 1}: {request.labels[index]}"})
        content.append({"type": "image", "image": image})
    content.append({"type": "text", "text": request.prompt})
    return [{"role": "user", "content": content}]


class TransformersDraftModel:
    """A processor + model pair loaded once with ``from_pretrained``, drafting by greedy ``generate``."""

    backend = "transformers"

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(settings.dtype, self.device)
        revision = settings.revision or None
        common: dict[str, Any] = {"revision": revision, "local_files_only": settings.local_files_only}
        self.processor: Any = load_processor(settings.name, **common)
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # a decoder-only batch must end where generation starts
        self.model: Any = _auto_model.from_pretrained(settings.name, dtype=self.dtype, **common)
        self.model.to(self.device).eval()
        # The SR and ORU name the model by id and revision, never by a local path.
        loaded = revision or getattr(self.model.config, "_commit_hash", None)
        self.name: str
        self.revision: str | None
        self.name, self.revision = model_identity(settings, loaded)
        eos = self.model.generation_config.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self._lock = threading.Lock()
        # What the model is, most telling first: its architecture, its processor, then its own name (a
        # folder's name, not the folders above it).
        image_processor = getattr(self.processor, "image_processor", None)
        self.box_grammar: BoxGrammar | None = resolve_grammar(
            settings.box_grammar, *(getattr(self.model.config, "architectures", None) or ()),
            type(self.processor).__name__, type(image_processor).__name__ if image_processor is not None else None,
            Path(settings.name).name if Path(settings.name).expanduser().is_dir() else settings.name,
        )

    def picture_steps(self, size: Size, pictures: int) -> tuple[Step, ...]:
        """What the processor does to a ``size`` picture shown with ``pictures - 1`` others (for grounding)."""
        image_processor = getattr(self.processor, "image_processor", None)
        if image_processor is None:
            raise ValueError("the processor has no image processor")
        return processor_steps(image_processor, size, pictures=pictures)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "max_new_tokens": self.settings.max_new_tokens,
            "do_sample": False,
            "time_limit_s": self.settings.generation_time_limit_s,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def _inputs(self, requests: Sequence[DraftRequest]) -> Any:
        conversations = [build_messages(r) for r in requests]
        inputs = self.processor.apply_chat_template(
            conversations if len(conversations) > 1 else conversations[0],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        return inputs.to(self.device, dtype=self.dtype)

    def _run(self, requests: Sequence[DraftRequest], oom_splits: int) -> list[Generation]:
        limit_s = self.settings.generation_time_limit_s
        max_new = self.settings.max_new_tokens
        inputs = self._inputs(requests)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_new, do_sample=False, max_time=limit_s)
        seconds = time.perf_counter() - started
        generations: list[Generation] = []
        for row in output[:, prompt_tokens:].tolist():
            end = next((i for i, token in enumerate(row) if token in self._eos_ids), None)
            stopped: StopReason
            if end is not None:
                stopped, tokens = "eos", row[:end]
            elif len(row) >= max_new:
                stopped, tokens = "max_new_tokens", row
            elif seconds >= limit_s:
                stopped, tokens = "time_limit", row
            else:
                stopped, tokens = "eos", row
            text = self.processor.decode(tokens, skip_special_tokens=True)
            generations.append(
                Generation(text, len(tokens), stopped, seconds, batch_size=len(requests), oom_splits=oom_splits)
            )
        logger.info("generated %d draft(s) in one batch in %.2f s", len(requests), seconds)
        return generations

    def _generate(self, requests: Sequence[DraftRequest], oom_splits: int) -> list[Generation]:
        try:
            return self._run(requests, oom_splits)
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(requests) == 1:
                raise TransientFailure("out of memory while drafting", code="model.out_of_memory") from None
            half = len(requests) // 2
            logger.warning("out of memory with a batch of %d; retrying as %d + %d", len(requests), half,
                           len(requests) - half)
            return self._generate(requests[:half], oom_splits + 1) + self._generate(requests[half:], oom_splits + 1)

    def generate(self, requests: Sequence[DraftRequest]) -> list[Generation]:
        """Greedy drafts for ``requests``, as one batch (halved on out-of-memory)."""
        if not requests or any(not r.images for r in requests):
            raise PermanentFailure("the study has no images to show the model", code="imaging.no_images")
        with self._lock:
            try:
                return self._generate(list(requests), 0)
            except TransientFailure:
                raise
            except Exception as exc:  # noqa: BLE001 -- messages may echo prompt text: keep only the class
                logger.error("generate failed in the model library (%s)", type(exc).__name__)
                raise PermanentFailure(
                    f"the model library failed while generating ({type(exc).__name__}); its message is not kept, "
                    "as it may quote the prompt", code="model.generation_failed",
                ) from None

    def draft(self, study: PreparedStudy) -> DraftResult:
        """Draft Findings and Impression for one prepared study with the matching built-in profile."""
        from radassist.models.profiles import select_profile

        return draft_one(self, DraftInput(study, select_profile(study.context, self.settings.profiles)))
