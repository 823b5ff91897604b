"""Output checks on crafted model outputs: what fails a job (nothing to review), and what is kept
with a warning for the safety gate (cut off at the token limit, repetitive)."""

from __future__ import annotations

import pytest

from radassist.errors import PermanentFailure
from radassist.models.base import Generation
from radassist.models.checks import check_generation, output_warnings
from radassist.safety import Check

GOOD = "Findings: The lungs are clear. Impression: No acute abnormality."


def gen(text: str, stopped: str = "eos", tokens: int = 20) -> Generation:
    return Generation(text=text, new_tokens=tokens, stopped=stopped, seconds=0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "stopped", "code"),
    [
        ("", "eos", "model.output_empty"),
        ("   \n\t ", "eos", "model.output_empty"),
        ("\x00\x01\x02\x03 \x04\x05\x06 Impression", "eos", "model.output_not_text"),
        ("0.12 0.55 0.91 3.14 2.72 1.41 1.73 2.23 9.99 0.01 0.02", "eos", "model.output_not_text"),
        ("\ufffd\ufffd\ufffd Findings \ufffd lungs", "eos", "model.output_not_text"),
        (GOOD, "time_limit", "model.timeout"),
    ],
)
def test_outputs_with_nothing_to_review_fail_with_their_reason(text: str, stopped: str, code: str) -> None:
    with pytest.raises(PermanentFailure) as caught:
        check_generation(gen(text, stopped))
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("text", "stopped", "checks"),
    [
        (GOOD, "eos", []),
        ("**Findings**\nNo effusion.\n\n**Impression**\nNormal.", "eos", []),
        ("Les poumons sont clairs. Conclusion : normal.", "eos", []),  # non-English text is text
        ("Findings: The lungs are clear. The heart is normal in size and", "max_new_tokens", [Check.TRUNCATED]),
        # Hit the limit after the Impression began: still a warning, the impression may be incomplete.
        ("Findings: Clear lungs. IMPRESSION: Normal chest radiograph with no", "max_new_tokens", [Check.TRUNCATED]),
        ("findings: " + "the " * 60, "max_new_tokens", [Check.REPETITIVE, Check.TRUNCATED]),
        ("Findings: clear clear clear clear clear clear clear clear clear clear. Impression: ok.", "eos",
         [Check.REPETITIVE]),
    ],
)
def test_output_warnings_keep_the_draft(text: str, stopped: str, checks: list[Check]) -> None:
    check_generation(gen(text, stopped))  # no failure: there is something to review
    warnings = output_warnings(gen(text, stopped))
    assert [w.check for w in warnings] == checks
    if Check.TRUNCATED in checks:
        message = next(w.message for w in warnings if w.check is Check.TRUNCATED)
        assert "token limit (20 tokens)" in message
        assert ("before an Impression" in message) == ("IMPRESSION" not in text)
