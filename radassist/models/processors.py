"""Load a model's processor, also where its video half cannot be built.

Qwen2-VL / Qwen2.5-VL processors bundle a video processor that needs torchvision.  A drafting
worker only ever sends still images, and torchvision is not installed here (its wheels pin torch),
so when ``AutoProcessor`` fails on the video processor we build the same processor class without
it: tokenizer, image processor and chat template are loaded exactly as usual.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import transformers

logger = logging.getLogger(__name__)

_hf: Any = transformers
_image_only_classes: dict[type[Any], type[Any]] = {}


def image_only_processor_class(base: type[Any]) -> type[Any]:
    """A subclass of processor class ``base`` whose sub-processors exclude ``video_processor``."""
    cached = _image_only_classes.get(base)
    if cached is not None:
        return cached

    def get_attributes(cls: type[Any]) -> list[str]:
        return [a for a in base.get_attributes() if a != "video_processor"]

    subclass = type(f"ImageOnly{base.__name__}", (base,), {"get_attributes": classmethod(get_attributes)})
    subclass.__module__ = base.__module__
    _image_only_classes[base] = subclass
    return subclass


def _processor_class_name(name: str, common: dict[str, Any]) -> str | None:
    folder = Path(name).expanduser()
    if folder.is_dir():
        for file in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
            path = folder / file
            if path.is_file():
                value = json.loads(path.read_text(encoding="utf-8")).get("processor_class")
                if value:
                    return str(value)
        return None
    from huggingface_hub import hf_hub_download

    for file in ("processor_config.json", "tokenizer_config.json"):
        try:
            downloaded = hf_hub_download(name, file, revision=common.get("revision"),
                                   local_files_only=bool(common.get("local_files_only")))
        except Exception:  # noqa: BLE001 -- the file is optional; try the next
            continue
        value = json.loads(Path(downloaded).read_text(encoding="utf-8")).get("processor_class")
        if value:
            return str(value)
    return None


def load_processor(name: str, **common: Any) -> Any:
    """``AutoProcessor.from_pretrained``, falling back to an image-only processor (see module doc)."""
    try:
        return _hf.AutoProcessor.from_pretrained(name, **common)
    except (OSError, ValueError, ImportError, AttributeError) as exc:
        if "video" not in str(exc).lower():
            raise
        class_name = _processor_class_name(name, common)
        base = getattr(_hf, class_name, None) if class_name else None
        if base is None:
            raise
        logger.info("loading %s without its video processor (torchvision absent)", class_name)
        return image_only_processor_class(base).from_pretrained(name, **common)
