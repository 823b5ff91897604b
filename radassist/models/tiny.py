"""A tiny vision-language model built offline, for tests, demos and CI.

No weights can be downloaded here, yet the drafting path must run through the real
``AutoProcessor`` / ``AutoModelForImageTextToText`` / ``generate`` code.  So we build a model of
a real architecture (Gemma 3: SigLIP tower + Gemma 3 text decoder, as MedGemma; LLaVA: SigLIP
tower + Llama decoder; Qwen2-VL and Qwen2.5-VL: their own ViT with 2D RoPE (windowed attention in
2.5) and patch merger + Qwen2 decoder with M-RoPE; Idefics3 / SmolVLM: SigLIP tower, pixel shuffle +
Llama decoder) a few hundred kilobytes in size, with a word-level tokenizer made by the ``tokenizers`` library, and set a handful of its
weights so that greedy decoding always writes one fixed, plausible report:

* the hidden size is at least the vocabulary size and the token embeddings are one-hot, so a
  token's residual stream is (a scaled copy of) its own one-hot vector;
* every layer's output projections (attention ``o_proj``, MLP ``down_proj``) are zero, so no
  layer changes the residual stream: the last position still holds the last token's one-hot;
* the final RMSNorm only rescales (Gemma multiplies by ``1 + w``: w = 0; Llama by ``w``: w = 1);
* the untied ``lm_head`` maps each token to the token that follows it in the report; the last
  prompt token (``model`` of Gemma's generation prompt, ``ASSISTANT:`` of LLaVA's, ``assistant`` of
  Qwen's, ``Assistant:`` of Idefics3's) maps to the first
  report token and the last report token maps to the end-of-turn token.

Report tokens are whole sentences and headings (added tokens), so a word repeated in the report
("The ... The ...") still has a single successor.  Decoding joins tokens with one space, which
gives the report text back.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_TINY_REPORT = (
    "Findings: The lungs are clear. No pleural effusion or pneumothorax. "
    "The cardiomediastinal silhouette is normal. "
    "Impression: No acute cardiopulmonary abnormality."
)

SUPPORTED_ARCHS = ("gemma3", "llava", "qwen2_vl", "qwen2_5_vl", "idefics3")

# The Gemma 3 chat template (as shipped with google/gemma-3-*-it and MedGemma), trimmed of
# nothing that matters here: system text is folded into the first user turn.
GEMMA3_CHAT_TEMPLATE = (
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

_SPECIAL_TOKENS = (
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
_CHAT_WORDS = ("user", "system", "model")

_IMAGE_SIZE = 32
_PATCH_SIZE = 16
_TOKENS_PER_IMAGE = 4  # (32 / 16) ** 2 patches, pooled with kernel 1


def report_units(report: str) -> list[str]:
    """Split a report into headings and sentences: the tiny model's report tokens."""
    units = [u for u in re.split(r"(?<=[.:!?])\s+", report.strip()) if u]
    if not units:
        raise ValueError("report: must contain text")
    if len(set(units)) != len(units):
        raise ValueError("report: each heading and sentence may appear only once")
    return units


def write_tiny_model(folder: Path, *, arch: str = "gemma3", report: str = DEFAULT_TINY_REPORT) -> Path:
    """Write a tiny model + processor to ``folder`` that greedily drafts ``report``; return ``folder``.

    Works offline: nothing is fetched from a hub.  Loading and one draft take well under a
    second on a CPU.
    """
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"arch: {arch!r} is not one of {', '.join(SUPPORTED_ARCHS)}")
    units = report_units(report)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if arch == "gemma3":
        _write_gemma3(folder, units)
    elif arch == "llava":
        _write_llava(folder, units)
    elif arch == "idefics3":
        _write_idefics3(folder, units)
    else:
        _write_qwen2_vl(folder, units, variant=arch)
    return folder


def _build_tokenizer(
    units: list[str], special: Sequence[str] = _SPECIAL_TOKENS, words: Sequence[str] = _CHAT_WORDS
) -> tuple[Any, dict[str, int]]:
    """A word-level tokenizer: special tokens, chat-template words, and the report's units."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    if any(u in special or u in words for u in units):
        raise ValueError("report: a sentence collides with a chat-template token")
    vocab: dict[str, int] = {}
    for token in (*special, *words):
        vocab[token] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(dict(vocab), unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    tokenizer.add_tokens([AddedToken(u, normalized=False) for u in units])
    full: dict[str, int] = {}
    for token in (*special, *words, *units):
        token_id = tokenizer.token_to_id(token)
        if token_id is None:  # cannot happen: every token was just added
            raise RuntimeError(f"tokenizer lost token {token!r}")
        full[token] = token_id
    return tokenizer, full


def _write_gemma3(folder: Path, units: list[str]) -> None:
    import torch
    import transformers

    # transformers is only partly typed; these are used as plain callables.
    hf: Any = transformers

    raw_tokenizer, ids = _build_tokenizer(units)
    vocab_size = raw_tokenizer.get_vocab_size(with_added_tokens=True)
    hidden = max(32, -(-vocab_size // 16) * 16)  # >= vocab, a multiple of 16

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
    tokenizer.chat_template = GEMMA3_CHAT_TEMPLATE
    image_processor = hf.Gemma3ImageProcessorPil(
        size={"height": _IMAGE_SIZE, "width": _IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = hf.Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=GEMMA3_CHAT_TEMPLATE,
        image_seq_length=_TOKENS_PER_IMAGE,
    )

    eos_ids = [ids["<eos>"], ids["<end_of_turn>"]]
    config = hf.Gemma3Config(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "query_pre_attn_scalar": 16,
            "max_position_embeddings": 4096,
            "sliding_window": 512,
            "pad_token_id": ids["<pad>"],
            "eos_token_id": eos_ids,
            "bos_token_id": ids["<bos>"],
            "tie_word_embeddings": False,
            "final_logit_softcapping": None,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": _IMAGE_SIZE,
            "patch_size": _PATCH_SIZE,
            "vision_use_head": False,
        },
        mm_tokens_per_image=_TOKENS_PER_IMAGE,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = hf.Gemma3ForConditionalGeneration(config).eval()
    # Gemma's RMSNorm multiplies by (1 + w): w = 0 makes the final norm a pure rescale.
    _wire_report(model, ids, ["model", *units, "<end_of_turn>"], norm_weight=0.0)
    model.generation_config = hf.GenerationConfig(
        bos_token_id=ids["<bos>"],
        eos_token_id=eos_ids,
        pad_token_id=ids["<pad>"],
        do_sample=False,
        max_new_tokens=64,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    _write_marker(folder, "gemma3", units)


def _write_marker(folder: Path, arch: str, units: list[str]) -> None:
    (folder / "radassist-tiny.json").write_text(
        json.dumps({"arch": arch, "report_units": units}, indent=2), encoding="utf-8"
    )


def _wire_report(model: Any, ids: dict[str, int], path: list[str], *, norm_weight: float) -> None:
    """Set the weights that make greedy decoding walk ``path`` (see the module docstring)."""
    import torch

    inner = model.model
    text = inner.language_model if hasattr(inner, "language_model") else inner.text_model
    vocab_size, hidden = text.embed_tokens.weight.shape
    end = ids[path[-1]]
    with torch.no_grad():
        text.embed_tokens.weight.copy_(torch.eye(vocab_size, hidden))
        for layer in text.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        text.norm.weight.fill_(norm_weight)
        # Every token not on the report's path ends the turn, so generation always stops.
        successor = dict.fromkeys(range(vocab_size), end)
        for word, next_word in itertools.pairwise(path):
            successor[ids[word]] = ids[next_word]
        head = torch.zeros(vocab_size, hidden)
        for current, following in successor.items():
            head[following, current] = 1.0
        model.lm_head.weight.copy_(head)


_LLAVA_SPECIAL_TOKENS = ("<pad>", "</s>", "<s>", "<unk>", "<image>")
_LLAVA_CHAT_WORDS = ("USER:", "ASSISTANT:")
# The llava-1.5 conversation format: "USER: <image>\n... ASSISTANT:".
LLAVA_CHAT_TEMPLATE = (
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


def _write_llava(folder: Path, units: list[str]) -> None:
    import torch
    import transformers

    hf: Any = transformers
    raw_tokenizer, ids = _build_tokenizer(units, _LLAVA_SPECIAL_TOKENS, _LLAVA_CHAT_WORDS)
    vocab_size = raw_tokenizer.get_vocab_size(with_added_tokens=True)
    hidden = max(32, -(-vocab_size // 16) * 16)
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
    tokenizer.chat_template = LLAVA_CHAT_TEMPLATE
    image_processor = hf.SiglipImageProcessorPil(
        size={"height": _IMAGE_SIZE, "width": _IMAGE_SIZE}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    processor = hf.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=_PATCH_SIZE,
        vision_feature_select_strategy="full",
        chat_template=LLAVA_CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=0,
    )
    config = hf.LlavaConfig(
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": _IMAGE_SIZE,
            "patch_size": _PATCH_SIZE,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            "pad_token_id": ids["<pad>"],
            "eos_token_id": ids["</s>"],
            "bos_token_id": ids["<s>"],
            "tie_word_embeddings": False,
        },
        image_token_index=ids["<image>"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_seq_length=(_IMAGE_SIZE // _PATCH_SIZE) ** 2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = hf.LlavaForConditionalGeneration(config).eval()
    # Llama's RMSNorm multiplies by w: w = 1 makes the final norm a pure rescale.
    _wire_report(model, ids, ["ASSISTANT:", *units, "</s>"], norm_weight=1.0)
    model.generation_config = hf.GenerationConfig(
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        do_sample=False,
        max_new_tokens=64,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    _write_marker(folder, "llava", units)


_QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<unk>",
)
_QWEN_CHAT_WORDS = ("user", "system", "assistant")
# The Qwen2-VL / Qwen2.5-VL ChatML format, images as <|vision_start|><|image_pad|><|vision_end|>.
QWEN2_VL_CHAT_TEMPLATE = (
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


def _write_qwen2_vl(folder: Path, units: list[str], variant: str = "qwen2_vl") -> None:
    """Qwen2-VL, or Qwen2.5-VL (windowed-attention vision tower, SwiGLU merger) with ``variant``."""
    import torch
    import transformers

    from radassist.models.processors import image_only_processor_class

    hf: Any = transformers
    raw_tokenizer, ids = _build_tokenizer(units, _QWEN_SPECIAL_TOKENS, _QWEN_CHAT_WORDS)
    vocab_size = raw_tokenizer.get_vocab_size(with_added_tokens=True)
    hidden = max(32, -(-vocab_size // 16) * 16)
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
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE
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
    processor_class = hf.Qwen2_5_VLProcessor if variant == "qwen2_5_vl" else hf.Qwen2VLProcessor
    processor = image_only_processor_class(processor_class)(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN2_VL_CHAT_TEMPLATE
    )
    vision_config: dict[str, Any] = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    if variant == "qwen2_5_vl":
        vision_config.update(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=hidden,
                             window_size=56, fullatt_block_indexes=[0])
    else:
        vision_config.update(depth=1, embed_dim=16, hidden_size=hidden, num_heads=2, mlp_ratio=2)
    config_class = hf.Qwen2_5_VLConfig if variant == "qwen2_5_vl" else hf.Qwen2VLConfig
    config = config_class(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "pad_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "bos_token_id": None,
            "tie_word_embeddings": False,
        },
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model_class = (
        hf.Qwen2_5_VLForConditionalGeneration if variant == "qwen2_5_vl" else hf.Qwen2VLForConditionalGeneration
    )
    model = model_class(config).eval()
    # Qwen2's RMSNorm multiplies by w: w = 1 makes the final norm a pure rescale.
    _wire_report(model, ids, ["assistant", *units, "<|im_end|>"], norm_weight=1.0)
    model.generation_config = hf.GenerationConfig(
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], do_sample=False, max_new_tokens=64
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    # Name the stock class, so any transformers install (with torchvision) loads it as usual.
    for name in ("processor_config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if "processor_class" in data:
                data["processor_class"] = processor_class.__name__
                path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    _write_marker(folder, variant, units)


_IDEFICS3_SPECIAL_TOKENS = (
    "<pad>",
    "<unk>",
    "<|im_start|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
)
_IDEFICS3_CHAT_WORDS = ("User:", "System:", "Assistant:")
# The Idefics3 / SmolVLM format: "<|im_start|>User:<image>...<end_of_utterance>\nAssistant:".
IDEFICS3_CHAT_TEMPLATE = (
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


def _write_idefics3(folder: Path, units: list[str]) -> None:
    import torch
    import transformers

    hf: Any = transformers
    raw_tokenizer, ids = _build_tokenizer(units, _IDEFICS3_SPECIAL_TOKENS, _IDEFICS3_CHAT_WORDS)
    vocab_size = raw_tokenizer.get_vocab_size(with_added_tokens=True)
    hidden = max(32, -(-vocab_size // 16) * 16)
    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=raw_tokenizer,
        eos_token="<end_of_utterance>",
        pad_token="<pad>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tokenizer.chat_template = IDEFICS3_CHAT_TEMPLATE
    # One 32-pixel tile per image, no splitting: 4 patches, pixel-shuffled (scale 2) into 1 token.
    image_processor = hf.Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": _IMAGE_SIZE},
        max_image_size={"longest_edge": _IMAGE_SIZE},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    processor = hf.Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=1, chat_template=IDEFICS3_CHAT_TEMPLATE
    )
    config = hf.Idefics3Config(
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": _IMAGE_SIZE,
            "patch_size": _PATCH_SIZE,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            "pad_token_id": ids["<pad>"],
            "eos_token_id": ids["<end_of_utterance>"],
            "bos_token_id": None,
            "tie_word_embeddings": False,
        },
        image_token_id=ids["<image>"],
        scale_factor=2,
        pad_token_id=ids["<pad>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = hf.Idefics3ForConditionalGeneration(config).eval()
    _wire_report(model, ids, ["Assistant:", *units, "<end_of_utterance>"], norm_weight=1.0)
    model.generation_config = hf.GenerationConfig(
        eos_token_id=ids["<end_of_utterance>"], pad_token_id=ids["<pad>"], do_sample=False, max_new_tokens=64
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    _write_marker(folder, "idefics3", units)
