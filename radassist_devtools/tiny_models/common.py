"""What every tiny model shares: the report as tokens, a word-level tokenizer, and the wiring.

A tiny model is a real architecture a few hundred kilobytes in size, with a handful of weights set
so that greedy decoding always writes one fixed, plausible report:

* the hidden size is at least the vocabulary size and the token embeddings are one-hot, so a
  token's residual stream is (a scaled copy of) its own one-hot vector;
* every layer's output projections (attention ``o_proj``, MLP ``down_proj``) are zero, so no
  layer changes the residual stream: the last position still holds the last token's one-hot;
* the final RMSNorm only rescales (Gemma multiplies by ``1 + w``: w = 0; Llama and Qwen2 by
  ``w``: w = 1);
* the untied ``lm_head`` maps each token to the token that follows it in the report; the last
  token of the generation prompt maps to the first report token and the last report token maps
  to the end-of-turn token.

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

IMAGE_SIZE = 32
PATCH_SIZE = 16


def text_config(
    vocab_size: int, hidden: int, *, pad: int, eos: int | list[int], bos: int | None, **extra: Any
) -> dict[str, Any]:
    """The language model's config every tiny model shares: one layer, two heads, one-hot sized."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "pad_token_id": pad,
        "eos_token_id": eos,
        "bos_token_id": bos,
        "tie_word_embeddings": False,
        **extra,
    }


def vision_config(**extra: Any) -> dict[str, Any]:
    """The vision tower's config every ViT-style tiny model shares: one layer over 32-pixel pictures."""
    return {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH_SIZE,
        **extra,
    }


def report_units(report: str) -> list[str]:
    """Split a report into headings and sentences: the tiny model's report tokens."""
    units = [u for u in re.split(r"(?<=[.:!?])\s+", report.strip()) if u]
    if not units:
        raise ValueError("report: must contain text")
    if len(set(units)) != len(units):
        raise ValueError("report: each heading and sentence may appear only once")
    return units


def build_tokenizer(
    units: list[str], special: Sequence[str], words: Sequence[str]
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


def hidden_size(raw_tokenizer: Any) -> tuple[int, int]:
    """The vocabulary size and a hidden size at least as large (a multiple of 16): one-hot embeddings fit."""
    vocab_size = int(raw_tokenizer.get_vocab_size(with_added_tokens=True))
    return vocab_size, max(32, -(-vocab_size // 16) * 16)


def wire_report(model: Any, ids: dict[str, int], path: list[str], *, norm_weight: float) -> None:
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


def save(folder: Path, model: Any, processor: Any, *, arch: str, units: list[str], **generation: Any) -> None:
    """Greedy generation settings, then the model, its processor and the marker file, into ``folder``."""
    import transformers

    hf: Any = transformers
    model.generation_config = hf.GenerationConfig(do_sample=False, max_new_tokens=64, **generation)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "radassist-tiny.json").write_text(
        json.dumps({"arch": arch, "report_units": units}, indent=2), encoding="utf-8"
    )


def name_stock_processor(folder: Path, processor_class: Any) -> None:
    """Name the stock processor class (not its image-only subclass) in the saved files, so any
    transformers install (with torchvision) loads it as usual."""
    for name in ("processor_config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if "processor_class" in data:
                data["processor_class"] = processor_class.__name__
                path.write_text(json.dumps(data, indent=2), encoding="utf-8")
