"""Idefics3 / SmolVLM: SigLIP tower, pixel shuffle + Llama decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radassist_devtools.tiny_models.common import (
    IMAGE_SIZE,
    build_tokenizer,
    hidden_size,
    save,
    text_config,
    vision_config,
    wire_report,
)

SPECIAL_TOKENS = (
    "<pad>",
    "<unk>",
    "<|im_start|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
)
CHAT_WORDS = ("User:", "System:", "Assistant:")
# The Idefics3 / SmolVLM format: "<|im_start|>User:<image>...<end_of_utterance>\nAssistant:".
CHAT_TEMPLATE = (
    "<|im_start|>"
    "{%- for message in messages -%}"
    "{{ message['role'] | capitalize + ':' }}"
    "{%- if message['content'] is string -%}{{ ' ' + message['content'] }}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ ' ' + item['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<end_of_utterance>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"
)


def _processor(hf: Any, raw_tokenizer: Any) -> Any:
    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=raw_tokenizer,
        eos_token="<end_of_utterance>",
        pad_token="<pad>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    # One 32-pixel tile per image, no splitting: 4 patches, pixel-shuffled (scale 2) into 1 token.
    image_processor = hf.Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    return hf.Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=1, chat_template=CHAT_TEMPLATE
    )


def _config(hf: Any, ids: dict[str, int], vocab_size: int, hidden: int) -> Any:
    return hf.Idefics3Config(
        vision_config=vision_config(),
        text_config=text_config(
            vocab_size,
            hidden,
            pad=ids["<pad>"],
            eos=ids["<end_of_utterance>"],
            bos=None,
            model_type="llama",
            head_dim=16,
        ),
        image_token_id=ids["<image>"],
        scale_factor=2,
        pad_token_id=ids["<pad>"],
        tie_word_embeddings=False,
    )


def write(folder: Path, units: list[str]) -> None:
    import torch
    import transformers

    hf: Any = transformers
    raw_tokenizer, ids = build_tokenizer(units, SPECIAL_TOKENS, CHAT_WORDS)
    vocab_size, hidden = hidden_size(raw_tokenizer)
    processor = _processor(hf, raw_tokenizer)
    torch.manual_seed(0)
    model = hf.Idefics3ForConditionalGeneration(_config(hf, ids, vocab_size, hidden)).eval()
    wire_report(model, ids, ["Assistant:", *units, "<end_of_utterance>"], norm_weight=1.0)
    save(
        folder,
        model,
        processor,
        arch="idefics3",
        units=units,
        eos_token_id=ids["<end_of_utterance>"],
        pad_token_id=ids["<pad>"],
    )
