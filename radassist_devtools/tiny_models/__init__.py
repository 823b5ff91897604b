"""A tiny vision-language model built offline, for tests, demos and CI.

No weights can be downloaded here, yet the drafting path must run through the real
``AutoProcessor`` / ``AutoModelForImageTextToText`` / ``generate`` code.  So a model of a real
architecture is built with random towers and a decoder wired to write one fixed report
(:mod:`radassist_devtools.tiny_models.common` says how), one module per architecture family:

* ``gemma3``: SigLIP tower + Gemma 3 text decoder, as MedGemma;
* ``llava``: SigLIP tower + Llama decoder;
* ``qwen2_vl`` and ``qwen2_5_vl``: their own ViT with 2D RoPE (windowed attention in 2.5) and
  patch merger + Qwen2 decoder with M-RoPE;
* ``idefics3`` (SmolVLM): SigLIP tower, pixel shuffle + Llama decoder;
* ``llava_onevision`` (RadVLM): SigLIP tower, any-resolution tiles + Qwen2 decoder.
"""

from __future__ import annotations

from pathlib import Path

from radassist_devtools.tiny_models.common import DEFAULT_TINY_REPORT, report_units

SUPPORTED_ARCHS = ("gemma3", "llava", "qwen2_vl", "qwen2_5_vl", "idefics3", "llava_onevision")


def write_tiny_model(folder: Path, *, arch: str = "gemma3", report: str = DEFAULT_TINY_REPORT) -> Path:
    """Write a tiny model + processor to ``folder`` that greedily drafts ``report``; return ``folder``.

    Works offline: nothing is fetched from a hub.
    """
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"arch: {arch!r} is not one of {', '.join(SUPPORTED_ARCHS)}")
    units = report_units(report)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if arch == "gemma3":
        from radassist_devtools.tiny_models import gemma3

        gemma3.write(folder, units)
    elif arch == "llava":
        from radassist_devtools.tiny_models import llava

        llava.write(folder, units)
    elif arch == "idefics3":
        from radassist_devtools.tiny_models import idefics3

        idefics3.write(folder, units)
    elif arch == "llava_onevision":
        from radassist_devtools.tiny_models import llava_onevision

        llava_onevision.write(folder, units)
    else:
        from radassist_devtools.tiny_models import qwen2_vl

        qwen2_vl.write(folder, units, variant=arch)
    return folder


__all__ = ["DEFAULT_TINY_REPORT", "SUPPORTED_ARCHS", "report_units", "write_tiny_model"]
