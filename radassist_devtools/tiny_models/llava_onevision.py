"""LLaVA-OneVision (SigLIP tower, any-resolution tiles + Qwen2 decoder) in the ChatML format: the
architecture of RadVLM.

The image processor is the PIL one (``LlavaOnevisionImageProcessorPil``, no torchvision), with a
32-pixel base view and a small grid of tile resolutions, so a picture costs a few dozen image
tokens: a lone picture is tiled (base view + tiles), several pictures in one request are each
padded square and not tiled, as the full-size model does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radassist_devtools.tiny_models.common import (
    IMAGE_SIZE,
    PATCH_SIZE,
    build_tokenizer,
    hidden_size,
    name_stock_processor,
    save,
    text_config,
    vision_config,
    wire_report,
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>", "<unk>")
CHAT_WORDS = ("user", "system", "assistant")
# LLaVA-OneVision-Qwen2's ChatML format, each image as "<image>\n" before the text.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<image>\n' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)
# Tile resolutions (height, width): multiples of the 32-pixel base, as [[384, 384], [384, 768], ...] are of 384.
GRID_PINPOINTS = [
    [IMAGE_SIZE, IMAGE_SIZE],
    [IMAGE_SIZE, 2 * IMAGE_SIZE],
    [2 * IMAGE_SIZE, IMAGE_SIZE],
    [2 * IMAGE_SIZE, 2 * IMAGE_SIZE],
]
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2


def _processor(hf: Any, raw_tokenizer: Any) -> Any:
    from radassist.models.processors import image_only_processor_class

    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=raw_tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    image_processor = hf.LlavaOnevisionImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_grid_pinpoints=GRID_PINPOINTS,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    # The stock processor also wants a video processor, which needs torchvision (not installed).
    return image_only_processor_class(hf.LlavaOnevisionProcessor)(
        image_processor=image_processor,
        tokenizer=tokenizer,
        num_image_tokens=IMAGE_TOKENS,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
        vision_aspect_ratio="anyres_max_9",
    )


def _config(hf: Any, ids: dict[str, int], vocab_size: int, hidden: int) -> Any:
    return hf.LlavaOnevisionConfig(
        vision_config=vision_config(model_type="siglip_vision_model"),
        text_config=text_config(
            vocab_size, hidden, pad=ids["<|endoftext|>"], eos=ids["<|im_end|>"], bos=None, model_type="qwen2"
        ),
        image_token_index=ids["<image>"],
        video_token_index=ids["<video>"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
        image_grid_pinpoints=GRID_PINPOINTS,
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
    model = hf.LlavaOnevisionForConditionalGeneration(_config(hf, ids, vocab_size, hidden)).eval()
    # Qwen2's RMSNorm multiplies by w: w = 1 makes the final norm a pure rescale.
    wire_report(model, ids, ["assistant", *units, "<|im_end|>"], norm_weight=1.0)
    save(
        folder,
        model,
        processor,
        arch="llava_onevision",
        units=units,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    name_stock_processor(folder, hf.LlavaOnevisionProcessor)
