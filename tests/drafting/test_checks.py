"""Output checks on crafted model outputs: what fails a job, and what is kept with a warning."""

from __future__ import annotations

import pytest

from radassist.errors import PermanentFailure
from radassist.models.base import Generation
from radassist.models.checks import check_generation, consistency_warnings

GOOD = "Findings: The lungs are clear. Impression: No acute abnormality."


def gen(text: str, stopped: str = "eos", tokens: int = 20) -> Generation:
    return Generation(text=text, new_tokens=tokens, stopped=stopped, seconds=0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "stopped", "code"),
    [
        ("", "eos", "model.output_empty"),
        ("   \n\t ", "eos", "model.output_empty"),
        ("Findings: The lungs are clear. The heart is normal in size and", "max_new_tokens", "model.output_truncated"),
        ("findings: " + "the " * 60, "max_new_tokens", "model.output_repetitive"),
        ("Findings: clear clear clear clear clear clear clear clear clear clear. Impression: ok.", "eos",
         "model.output_repetitive"),
        ("\x00\x01\x02\x03 \x04\x05\x06 Impression", "eos", "model.output_not_text"),
        ("0.12 0.55 0.91 3.14 2.72 1.41 1.73 2.23 9.99 0.01 0.02", "eos", "model.output_not_text"),
        ("\ufffd\ufffd\ufffd Findings \ufffd lungs", "eos", "model.output_not_text"),
        (GOOD, "time_limit", "model.timeout"),
    ],
)
def test_bad_outputs_fail_with_their_reason(text: str, stopped: str, code: str) -> None:
    with pytest.raises(PermanentFailure) as caught:
        check_generation(gen(text, stopped))
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("text", "stopped"),
    [
        (GOOD, "eos"),
        # Hit the limit, but only after the Impression began: usable, the impression is there.
        ("Findings: Clear lungs. IMPRESSION: Normal chest radiograph with no", "max_new_tokens"),
        ("**Findings**\nNo effusion.\n\n**Impression**\nNormal.", "eos"),
        ("Les poumons sont clairs. Conclusion : normal.", "eos"),  # non-English text is text
    ],
)
def test_good_outputs_pass(text: str, stopped: str) -> None:
    check_generation(gen(text, stopped))


def test_laterality_words_against_image_laterality() -> None:
    warnings = consistency_warnings("A mass in the left breast.", lateralities={"R"})
    assert len(warnings) == 1 and "left" in warnings[0] and "ImageLaterality/Laterality R" in warnings[0]
    assert consistency_warnings("A mass in the right breast.", lateralities={"R"}) == []
    assert consistency_warnings("Bilateral effusions, left larger.", lateralities={"R"}) == []
    assert consistency_warnings("Left lower lobe opacity.", lateralities={"R", "L"}) == []
    assert consistency_warnings("Left lower lobe opacity.", lateralities=()) == []


def test_body_part_against_body_part_examined() -> None:
    warnings = consistency_warnings("No intracranial haemorrhage. Ventricles normal.", body_part="chest")
    assert len(warnings) == 1 and warnings[0].startswith("body part:") and "intracranial" in warnings[0]
    # A chest CT that mentions the liver in the upper abdomen is normal reporting, not a mismatch.
    assert consistency_warnings("Lungs clear. Small liver cyst.", body_part="chest") == []
    assert consistency_warnings("No intracranial haemorrhage.", body_part=None) == []


def test_sex_specific_findings_against_patient_sex() -> None:
    assert consistency_warnings("The prostate is enlarged.", sex="female")[0].startswith("sex:")
    assert consistency_warnings("The uterus and ovaries are normal.", sex="male")[0].count(",") >= 1
    assert consistency_warnings("The prostate is enlarged.", sex="male") == []
    assert consistency_warnings("The uterus is normal.", sex=None) == []
