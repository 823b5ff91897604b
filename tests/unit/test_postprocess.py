"""split_report on the shapes model output really takes."""

from __future__ import annotations

import pytest

from radassist.errors import PermanentFailure
from radassist.models.postprocess import split_report

CASES = [
    pytest.param(
        "Findings: The lungs are clear. No effusion. Impression: Normal chest.",
        ("The lungs are clear. No effusion.", "Normal chest."),
        id="inline-headings",
    ),
    pytest.param(
        "FINDINGS:\nThe lungs are clear.\n\nIMPRESSION:\nNormal chest.",
        ("The lungs are clear.", "Normal chest."),
        id="upper-case",
    ),
    pytest.param(
        "findings\nThe lungs are clear.\nimpression\nNormal chest.",
        ("The lungs are clear.", "Normal chest."),
        id="lower-case-no-colon",
    ),
    pytest.param(
        "**FINDINGS**\nThe lungs are clear.\n\n**IMPRESSION:**\nNormal chest.",
        ("The lungs are clear.", "Normal chest."),
        id="markdown-bold",
    ),
    pytest.param(
        "## Findings\n- Lungs clear.\n- Heart normal.\n\n## Impression\nNormal.",
        ("- Lungs clear.\n- Heart normal.", "Normal."),
        id="markdown-headers-and-bullets",
    ),
    pytest.param(
        "**Findings**: lungs clear.\n**Impression**: normal.",
        ("lungs clear.", "normal."),
        id="bold-then-colon",
    ),
    pytest.param(
        "Sure! Here is the report:\n\nFindings: The lungs are clear.\nImpression: Normal chest.\n\n"
        "Please note that this draft must be reviewed by a radiologist.\nLet me know if you need more.",
        ("The lungs are clear.", "Normal chest."),
        id="chat-chatter",
    ),
    pytest.param(
        "Findings: The lungs are clear. The heart is normal.\n\nNo acute cardiopulmonary process.",
        ("The lungs are clear. The heart is normal.", "No acute cardiopulmonary process."),
        id="no-impression-last-paragraph",
    ),
    pytest.param(
        "The lungs are clear. The heart is normal. No acute disease.",
        ("The lungs are clear. The heart is normal.", "No acute disease."),
        id="no-headings-last-sentence",
    ),
    pytest.param(
        "Impression: Normal chest. Findings: Clear lungs.",
        ("Clear lungs.", "Normal chest."),
        id="impression-first",
    ),
    pytest.param(
        "Findings: There are no findings: the lungs are clear. Conclusion: Normal.",
        ("There are no findings: the lungs are clear.", "Normal."),
        id="conclusion-synonym-and-inline-word",
    ),
    pytest.param(
        "Findings: Lungs clear.<end_of_turn>\nImpression: Normal.<eos>",
        ("Lungs clear.", "Normal."),
        id="leftover-special-tokens",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_report(text: str, expected: tuple[str, str]) -> None:
    assert split_report(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("  \n\t \n", id="whitespace"),
        pytest.param("<end_of_turn>", id="only-special-token"),
        pytest.param("the " * 40, id="one-token-repeated"),
        pytest.param("Findings: " + "lung " * 30, id="repeated-after-heading"),
        pytest.param("clear lungs " * 40, id="short-phrase-repeated"),
        pytest.param("." * 60, id="punctuation-only"),
        pytest.param("Findings:\nImpression:", id="headings-only"),
    ],
)
def test_invalid_output_is_refused(text: str) -> None:
    with pytest.raises(PermanentFailure) as caught:
        split_report(text)
    assert caught.value.code == "model.output_invalid"


def test_long_normal_report_is_not_degenerate() -> None:
    sentences = [f"Finding number {i} is described here in words." for i in range(30)]
    findings, impression = split_report("Findings: " + " ".join(sentences) + " Impression: Stable.")
    assert findings.startswith("Finding number 0") and impression == "Stable."
