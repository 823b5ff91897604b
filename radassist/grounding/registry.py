"""Which grammar a model writes its boxes in, and the parser for it.

A grammar is chosen explicitly (a profile or backend names it) or recognised from the names a
model goes by -- its hub id, its architecture or its processor class -- so that a Qwen2.5-VL served
by vLLM under a site's own name can still be named explicitly.  Models that localise in another
grammar get a parser here (or through a site adapter); models that do not localise get none, and
their text is used as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from radassist.grounding.boxes import ParsedReport
from radassist.grounding.maira import parse_maira
from radassist.grounding.qwen import parse_qwen

Parser = Callable[[str], ParsedReport]


class BoxGrammar(StrEnum):
    """The box grammars RadAssist reads."""

    QWEN2_5_VL = "qwen2_5_vl"
    """JSON ``bbox_2d`` in absolute pixels of the processor-resized picture (Qwen2.5-VL)."""
    MAIRA_2 = "maira_2"
    """``<obj>`` phrases with ``<box>`` bins of a 100-cell grid over the cropped picture (MAIRA-2)."""


_PARSERS: dict[BoxGrammar, Parser] = {
    BoxGrammar.QWEN2_5_VL: parse_qwen,
    BoxGrammar.MAIRA_2: parse_maira,
}

# Hub ids (Qwen/Qwen2.5-VL-7B-Instruct, microsoft/maira-2), architectures
# (Qwen2_5_VLForConditionalGeneration) and processor classes (Maira2Processor).  Qwen2-VL and
# Qwen3-VL write boxes on a 0-1000 grid instead, so they must not match.
_PATTERNS: tuple[tuple[re.Pattern[str], BoxGrammar], ...] = (
    (re.compile(r"qwen2[._-]?5[._-]?vl", re.IGNORECASE), BoxGrammar.QWEN2_5_VL),
    (re.compile(r"maira[._-]?2", re.IGNORECASE), BoxGrammar.MAIRA_2),
)


def parser_for(grammar: str | BoxGrammar) -> Parser:
    """The parser of ``grammar`` (``qwen2_5_vl``, ``maira_2``)."""
    try:
        return _PARSERS[BoxGrammar(grammar)]
    except ValueError:
        known = ", ".join(g.value for g in BoxGrammar)
        raise ValueError(f'Argument "grammar" must be one of {known}.') from None


def grammar_for_model(*names: str | None) -> BoxGrammar | None:
    """The grammar of the model that goes by any of ``names`` (hub id, architecture, processor
    class), or None when none of them is a model we know to localise."""
    for name in names:
        if not name:
            continue
        for pattern, grammar in _PATTERNS:
            if pattern.search(name):
                return grammar
    return None
