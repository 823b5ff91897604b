"""LLaVA (SigLIP tower + Llama decoder) in the llava-1.5 conversation format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radassist_devtools.tiny_models.common import (
    IMAGE_SIZE,
    PATCH_SIZE,
    build_tokenizer,
    hidden_size,
    save,
    text_config,
    vision_config,
    wire_report,
)

SPECIAL_TOKENS = ("<pad>", "</s>", "<s>", "<unk>", "<image>")
CHAT_WORDS = ("USER:", "ASSISTANT:")
# The llava-1.5 conversation format: "USER: <image>\n... ASSISTANT:".
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ 'USER: ' }}{%- else -%}{{ 'ASSISTANT: ' }}{%- endif -%}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<image>\n' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- if message['role'] != 'user' -%}{{ '</s>' }}{%- endif -%}"
    "{{ ' ' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)


def _processor(hf: Any, raw_tokenizer: Any) -> Any:
    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=raw_tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    image_processor = hf.SiglipImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    return hf.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=0,
    )


def _config(hf: Any, ids: dict[str, int], vocab_size: int, hidden: int) -> Any:
    return hf.LlavaConfig(
        vision_config=vision_config(model_type="siglip_vision_model"),
        text_config=text_config(
            vocab_size,
            hidden,
            pad=ids["<pad>"],
            eos=ids["</s>"],
            bos=ids["<s>"],
            model_type="llama",
            head_dim=16,
        ),
        image_token_index=ids["<image>"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
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
    model = hf.LlavaForConditionalGeneration(_config(hf, ids, vocab_size, hidden)).eval()
    # Llama's RMSNorm multiplies by w: w = 1 makes the final norm a pure rescale.
    wire_report(model, ids, ["ASSISTANT:", *units, "</s>"], norm_weight=1.0)
    save(
        folder,
        model,
        processor,
        arch="llava",
        units=units,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
    )
