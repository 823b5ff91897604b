"""Qwen2-VL and Qwen2.5-VL: their own ViT with 2D RoPE (windowed attention and a SwiGLU merger in
2.5) and patch merger + Qwen2 decoder with M-RoPE, in the ChatML format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radassist_devtools.tiny_models.common import (
    build_tokenizer,
    hidden_size,
    name_stock_processor,
    save,
    text_config,
    wire_report,
)

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<unk>",
)
CHAT_WORDS = ("user", "system", "assistant")
# The Qwen2-VL / Qwen2.5-VL ChatML format, images as <|vision_start|><|image_pad|><|vision_end|>.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)


def _processor(hf: Any, raw_tokenizer: Any, processor_class: Any) -> Any:
    from radassist.models.processors import image_only_processor_class

    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=raw_tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    # 28-pixel units (patch 14, merge 2): a 32-64 px picture becomes 1-4 image tokens.
    image_processor = hf.Qwen2VLImageProcessorPil(
        min_pixels=28 * 28,
        max_pixels=56 * 56,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    # The stock processor also wants a video processor, which needs torchvision (not installed).
    return image_only_processor_class(processor_class)(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )


def _config(hf: Any, ids: dict[str, int], vocab_size: int, hidden: int, variant: str) -> Any:
    vision_config: dict[str, Any] = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    if variant == "qwen2_5_vl":
        vision_config.update(
            depth=1,
            hidden_size=16,
            intermediate_size=32,
            num_heads=2,
            out_hidden_size=hidden,
            window_size=56,
            fullatt_block_indexes=[0],
        )
    else:
        vision_config.update(depth=1, embed_dim=16, hidden_size=hidden, num_heads=2, mlp_ratio=2)
    config_class = hf.Qwen2_5_VLConfig if variant == "qwen2_5_vl" else hf.Qwen2VLConfig
    return config_class(
        text_config=text_config(
            vocab_size,
            hidden,
            pad=ids["<|endoftext|>"],
            eos=ids["<|im_end|>"],
            bos=None,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def write(folder: Path, units: list[str], variant: str = "qwen2_vl") -> None:
    """Qwen2-VL, or Qwen2.5-VL with ``variant="qwen2_5_vl"``."""
    import torch
    import transformers

    hf: Any = transformers
    raw_tokenizer, ids = build_tokenizer(units, SPECIAL_TOKENS, CHAT_WORDS)
    vocab_size, hidden = hidden_size(raw_tokenizer)
    processor_class = hf.Qwen2_5_VLProcessor if variant == "qwen2_5_vl" else hf.Qwen2VLProcessor
    processor = _processor(hf, raw_tokenizer, processor_class)
    torch.manual_seed(0)
    model_class = (
        hf.Qwen2_5_VLForConditionalGeneration
        if variant == "qwen2_5_vl"
        else hf.Qwen2VLForConditionalGeneration
    )
    model = model_class(_config(hf, ids, vocab_size, hidden, variant)).eval()
    # Qwen2's RMSNorm multiplies by w: w = 1 makes the final norm a pure rescale.
    wire_report(model, ids, ["assistant", *units, "<|im_end|>"], norm_weight=1.0)
    save(
        folder,
        model,
        processor,
        arch=variant,
        units=units,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    name_stock_processor(folder, processor_class)
