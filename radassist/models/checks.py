"""Checks on what the model wrote, before anything is sent anywhere.

Two kinds.  *Failures* stop the job with a named reason and no SR or ORU, because there is nothing
a radiologist could review: no text at all, text stopped by the time limit, or bytes that are not
prose.  *Warnings* keep the draft (:class:`radassist.safety.SafetyWarning`) and the gate applies
``[safety]``'s policy to them: the output stopped at the token limit (``truncated``) or is one
token over and over (``repetitive``), and the consistency checks of :mod:`radassist.safety.checks`
(anatomy, laterality, sex).
"""

from __future__ import annotations

import re
import unicodedata

from radassist.errors import PermanentFailure
from radassist.models.base import Generation
from radassist.models.postprocess import _is_degenerate  # noqa: PLC2701 -- one definition of "degenerate"
from radassist.safety.checks import Check, SafetyWarning

_IMPRESSION_HEADING = re.compile(r"(?im)(?:^|[.!?]\s*|\*\*|#\s*)(?:impressions?|conclusions?|summary)\s*[:*]?")


def check_generation(generation: Generation) -> None:
    """Raise ``PermanentFailure`` with a specific code when the output holds nothing to review."""
    text = generation.text or ""
    if not text.strip():
        raise PermanentFailure("the model returned no text", code="model.output_empty")
    if generation.stopped == "time_limit":
        raise PermanentFailure("the model was stopped by the generation time limit", code="model.timeout")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\t")
    letters = sum(1 for ch in text if unicodedata.category(ch).startswith("L"))
    replacement = text.count("\ufffd")
    if printable / len(text) < 0.95 or letters / max(1, len(text.strip())) < 0.4 or replacement > 2:
        raise PermanentFailure("the model's output is not text", code="model.output_not_text")


def is_repetitive(text: str) -> bool:
    """True for output that repeats one token or a short phrase instead of saying anything."""
    return _is_degenerate(text)


def output_warnings(generation: Generation) -> list[SafetyWarning]:
    """The output checks that fire: cut off at the token limit, repetitive."""
    warnings: list[SafetyWarning] = []
    if is_repetitive(generation.text):
        warnings.append(SafetyWarning(Check.REPETITIVE, "the model repeated itself instead of reporting"))
    if generation.stopped == "max_new_tokens":
        where = ("after the Impression began; the Impression may be incomplete"
                 if _IMPRESSION_HEADING.search(generation.text) else "before an Impression")
        warnings.append(SafetyWarning(
            Check.TRUNCATED, f"the output was cut off at the token limit ({generation.new_tokens} tokens) {where}"))
    return warnings
