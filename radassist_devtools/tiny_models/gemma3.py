"""Gemma 3 (SigLIP tower + Gemma 3 text decoder, the architecture of MedGemma)."""

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

# The Gemma 3 chat template (as shipped with google/gemma-3-*-it and MedGemma), trimmed of
# nothing that matters here: system text is folded into the first user turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}"
    "{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] | trim }}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

SPECIAL_TOKENS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)
# Words of the chat template; the last one is what the generation prompt ends with.
CHAT_WORDS = ("user", "system", "model")
TOKENS_PER_IMAGE = 4  # (32 / 16) ** 2 patches, pooled with kernel 1


def _processor(hf: Any, raw_tokenizer: Any) -> Any:
    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=raw_tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={
            "image_token": "<image_soft_token>",
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
        },
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    image_processor = hf.Gemma3ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return hf.Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        image_seq_length=TOKENS_PER_IMAGE,
    )


def _config(hf: Any, ids: dict[str, int], vocab_size: int, hidden: int) -> Any:
    return hf.Gemma3Config(
        text_config=text_config(
            vocab_size,
            hidden,
            pad=ids["<pad>"],
            eos=[ids["<eos>"], ids["<end_of_turn>"]],
            bos=ids["<bos>"],
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=512,
            final_logit_softcapping=None,
        ),
        vision_config=vision_config(vision_use_head=False),
        mm_tokens_per_image=TOKENS_PER_IMAGE,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
        tie_word_embeddings=False,
    )


def write(folder: Path, units: list[str]) -> None:
    import torch
    import transformers

    # transformers is only partly typed; these are used as plain callables.
    hf: Any = transformers
    raw_tokenizer, ids = build_tokenizer(units, SPECIAL_TOKENS, CHAT_WORDS)
    vocab_size, hidden = hidden_size(raw_tokenizer)
    processor = _processor(hf, raw_tokenizer)
    torch.manual_seed(0)
    model = hf.Gemma3ForConditionalGeneration(_config(hf, ids, vocab_size, hidden)).eval()
    # Gemma's RMSNorm multiplies by (1 + w): w = 0 makes the final norm a pure rescale.
    wire_report(model, ids, ["model", *units, "<end_of_turn>"], norm_weight=0.0)
    save(
        folder,
        model,
        processor,
        arch="gemma3",
        units=units,
        bos_token_id=ids["<bos>"],
        eos_token_id=[ids["<eos>"], ids["<end_of_turn>"]],
        pad_token_id=ids["<pad>"],
    )
