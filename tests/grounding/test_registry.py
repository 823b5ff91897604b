"""Choosing the grammar by the names a model goes by, or by name."""

from __future__ import annotations

import pytest

from radassist.grounding import BoxGrammar, grammar_for_model, parser_for
from radassist.grounding.maira import parse_maira
from radassist.grounding.qwen import parse_qwen


@pytest.mark.parametrize(
    ("names", "grammar"),
    [
        (("Qwen/Qwen2.5-VL-7B-Instruct",), BoxGrammar.QWEN2_5_VL),
        (("site-served-model", "Qwen2_5_VLForConditionalGeneration"), BoxGrammar.QWEN2_5_VL),
        ((None, "", "Qwen2_5_VLProcessor"), BoxGrammar.QWEN2_5_VL),
        (("microsoft/maira-2",), BoxGrammar.MAIRA_2),
        (("Maira2ForConditionalGeneration",), BoxGrammar.MAIRA_2),
        (("Qwen/Qwen2-VL-7B-Instruct",), None),  # a 0-1000 grid: not this grammar
        (("Qwen/Qwen3-VL-8B-Instruct",), None),
        (("google/medgemma-4b-it", "Gemma3ForConditionalGeneration"), None),
        ((), None),
    ],
)
def test_grammar_for_model(names: tuple[str | None, ...], grammar: BoxGrammar | None) -> None:
    assert grammar_for_model(*names) == grammar


def test_parser_for_names_and_enum() -> None:
    assert parser_for(BoxGrammar.QWEN2_5_VL) is parse_qwen
    assert parser_for("maira_2") is parse_maira
    with pytest.raises(ValueError, match='"grammar".*qwen2_5_vl, maira_2'):
        parser_for("florence")
