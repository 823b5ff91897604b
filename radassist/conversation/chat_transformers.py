"""Answering with the in-process transformers model: the processor's chat template, streamed.

The first user turn is built exactly as the draft's was (:func:`radassist.models.transformers_backend.build_messages`),
the later turns are text.  ``generate`` runs in a thread and hands each piece of text to
transformers' ``TextIteratorStreamer`` as it is decoded; the caller reads the pieces as they come.
The limit on time is ``generate``'s own ``max_time``.  Tokens are counted with the model's own
processor, pictures included, so the context budget is exact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import torch
from transformers import TextIteratorStreamer

from radassist.conversation.chat import StreamEnd
from radassist.conversation.context import ChatTurn, Conversation, chat_turns
from radassist.errors import PermanentFailure, TransientFailure
from radassist.grounding.geometry import Size, Step
from radassist.grounding.registry import BoxGrammar, grammar_for_model
from radassist.models.base import DraftRequest, GenerationBackend
from radassist.models.transformers_backend import build_messages

logger = logging.getLogger(__name__)

STREAM_SLACK_S = 60.0
"""How long past the time limit the reader waits for the next piece before it gives up on ``generate``."""


class TransformersChat:
    """A loaded :class:`~radassist.models.transformers_backend.TransformersDraftModel`, asked questions."""

    def __init__(self, backend: GenerationBackend) -> None:
        loaded: Any = backend  # a TransformersDraftModel: its processor and model are used as they are
        self.backend = loaded
        self.name: str = backend.name
        self.revision: str | None = backend.revision
        self.processor: Any = loaded.processor
        self.model: Any = loaded.model

    def describe(self) -> dict[str, Any]:
        return {"backend": "transformers", "device": str(self.backend.device),
                "dtype": str(self.backend.dtype).removeprefix("torch."), "do_sample": False, "streamed": True}

    def context_limit(self) -> int | None:
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        limit = getattr(text, "max_position_embeddings", None)
        return int(limit) if isinstance(limit, int) and limit > 0 else None

    def messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for turn in chat_turns(conversation):
            if turn.with_pictures:
                messages += build_messages(DraftRequest(conversation.images, turn.text, conversation.labels))
            else:
                messages.append(_text_turn(turn))
        return messages

    def _inputs(self, conversation: Conversation) -> Any:
        return self.processor.apply_chat_template(
            self.messages(conversation), add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt",
        )

    def count(self, conversation: Conversation) -> int:
        return int(self._inputs(conversation)["input_ids"].shape[-1])

    def count_text(self, text: str) -> int:
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 4  # and the turn's own markers

    def stream(self, conversation: Conversation, *, max_new_tokens: int, time_limit_s: float,
               end: StreamEnd) -> Iterator[str]:
        inputs = self._inputs(conversation).to(self.backend.device, dtype=self.backend.dtype)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=time_limit_s + STREAM_SLACK_S)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    outcome["output"] = self.model.generate(**inputs, streamer=streamer, max_new_tokens=max_new_tokens,
                                                            do_sample=False, max_time=time_limit_s)
            except BaseException as exc:  # noqa: BLE001 -- handed to the reading thread, which raises it
                outcome["error"] = exc
                streamer.end()  # type: ignore[no-untyped-call]

        thread = threading.Thread(target=run, name="radassist-answer", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            thread.join(timeout=time_limit_s + STREAM_SLACK_S)
        self._ended(outcome, prompt_tokens, max_new_tokens, end)

    def _ended(self, outcome: dict[str, Any], prompt_tokens: int, max_new_tokens: int, end: StreamEnd) -> None:
        error = outcome.get("error")
        if isinstance(error, torch.OutOfMemoryError):
            raise TransientFailure("out of memory while answering", code="model.out_of_memory")
        if error is not None or "output" not in outcome:
            name = type(error).__name__ if error is not None else "no output"
            raise PermanentFailure(f"the model failed while answering ({name})", code="model.generation_failed")
        row = outcome["output"][0, prompt_tokens:].tolist()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        stop = next((i for i, token in enumerate(row) if token in eos_ids), None)
        end.new_tokens = stop if stop is not None else len(row)
        if stop is not None:
            end.stopped = "eos"
        elif len(row) >= max_new_tokens:
            end.stopped = "max_new_tokens"
        else:
            end.stopped = "time_limit"

    def box_grammar(self) -> BoxGrammar | None:
        architectures = getattr(self.model.config, "architectures", None) or ()
        return grammar_for_model(self.name, *architectures, type(self.processor).__name__)

    def picture_steps(self, size: Size) -> tuple[Step, ...]:
        from radassist.grounding.processors import processor_steps

        image_processor = getattr(self.processor, "image_processor", None)
        if image_processor is None:
            return ()
        try:
            return processor_steps(image_processor, size)
        except ValueError:
            logger.info("the processor's picture sizing is not known; boxes are not drawn")
            raise


def _text_turn(turn: ChatTurn) -> dict[str, Any]:
    return {"role": turn.role, "content": [{"type": "text", "text": turn.text}]}
