"""A tiny vision-language model built offline, for tests, demos and CI.

No weights can be downloaded here, yet the drafting path must run through the real
``AutoProcessor`` / ``AutoModelForImageTextToText`` / ``generate`` code.  So we build a model of
a real architecture (Gemma 3: SigLIP tower + Gemma 3 text decoder, as MedGemma; or LLaVA: SigLIP
tower + Llama decoder) a few hundred kilobytes in size, with a word-level tokenizer made by the ``tokenizers`` library, and set a handful of its
weights so that greedy decoding always writes one fixed, plausible report:

* the hidden size is at least the vocabulary size and the token embeddings are one-hot, so a
  token's residual stream is (a scaled copy of) its own one-hot vector;
* every layer's output projections (attention ``o_proj``, MLP ``down_proj``) are zero, so no
  layer changes the residual stream: the last position still holds the last token's one-hot;
* the final RMSNorm only rescales (Gemma multiplies by ``1 + w``: w = 0; Llama by ``w``: w = 1);
* the untied ``lm_head`` maps each token to the token that follows it in the report; the last
  prompt token (``model`` of Gemma's generation prompt, ``ASSISTANT:`` of LLaVA's) maps to the first
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

SUPPORTED_ARCHS = ("gemma3", "llava")

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
    else:
        _write_llava(folder, units)
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

    text = model.model.language_model
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
