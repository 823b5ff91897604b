"""The consistency checks against what the study is, and the gate that applies ``[safety]`` to them."""

from __future__ import annotations

import pytest

from radassist.config.safety import SafetySettings
from radassist.safety import Check, SafetyWarning, StudyFacts, consistency_warnings, decide, stated_warnings
from radassist.safety.gate import applied_warnings, checks_column, column_checks

CHEST_TEXT = ("Findings: The lungs are clear. No pleural effusion or pneumothorax. The cardiomediastinal silhouette "
              "is normal.\nImpression: No acute cardiopulmonary abnormality.")


def checks(text: str, **facts: object) -> list[Check]:
    return [w.check for w in consistency_warnings(text, StudyFacts(**facts))]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "facts",
    [
        {"modality": "MG", "profile": "mammography"},  # the shared mammogram: profile chosen by modality
        {"modality": "MG"},  # a site profile with another name: the modality still says breast
        {"modality": "CT", "profile": "ct_head"},  # a head CT without BodyPartExamined (description HEAD)
        {"modality": "CT", "profile": "ct", "descriptions": ("CT HEAD W/O", None)},
        {"modality": "MR", "profile": "mr_brain"},
        {"modality": "CT", "body_part": "ABDOMEN"},
        {"modality": "CR", "body_part": "EXTREMITY"},
    ],
)
def test_a_chest_report_on_another_kind_of_study_is_an_anatomy_warning(facts: dict[str, object]) -> None:
    warnings = consistency_warnings(CHEST_TEXT, StudyFacts(**facts))  # type: ignore[arg-type]
    assert [w.check for w in warnings] == [Check.ANATOMY]
    assert "lungs" in warnings[0].message and "(chest)" in warnings[0].message
    assert "judged from" in warnings[0].message


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        (CHEST_TEXT, {"modality": "CR", "profile": "cxr"}),
        (CHEST_TEXT, {"modality": "CT", "body_part": "CHEST"}),
        # A chest CT that mentions the liver in the upper abdomen is normal reporting.
        ("Lungs clear. Small liver cyst.", {"modality": "CT", "profile": "ct_chest"}),
        ("No intracranial haemorrhage. Ventricles normal.", {"modality": "CT", "profile": "ct_head"}),
        ("Scattered fibroglandular density. No suspicious mass. BI-RADS 1.", {"modality": "MG"}),
        # Nothing says what the study is: nothing to compare with.
        (CHEST_TEXT, {"modality": "OT"}),
        (CHEST_TEXT, {"modality": "CT", "profile": "ct"}),
    ],
)
def test_reports_about_the_imaged_region_pass(text: str, facts: dict[str, object]) -> None:
    assert checks(text, **facts) == []


def test_laterality_words_against_image_laterality() -> None:
    warnings = consistency_warnings("A mass in the left breast.", StudyFacts(lateralities=("R",)))
    assert len(warnings) == 1 and warnings[0].check is Check.LATERALITY
    assert "left" in warnings[0].message and "ImageLaterality/Laterality R" in warnings[0].message
    assert checks("A mass in the right breast.", lateralities=("R",)) == []
    assert checks("Bilateral effusions, left larger.", lateralities=("R",)) == []
    assert checks("Left lower lobe opacity.", lateralities=("L", "R")) == []
    assert checks("Left lower lobe opacity.", lateralities=("B", "L")) == []
    assert checks("Left lower lobe opacity.") == []


def test_sex_specific_organs_against_patient_sex() -> None:
    warning = consistency_warnings("The prostate is enlarged.", StudyFacts(sex="female"))[0]
    assert warning.check is Check.SEX and "prostate" in warning.message and "female" in warning.message
    assert "uterus, ovaries" in consistency_warnings("The uterus and ovaries are normal.", StudyFacts(sex="male"))[0].message
    assert checks("The prostate is enlarged.", sex="male") == []
    assert checks("The uterus is normal.") == []


def test_every_check_fires_on_one_text() -> None:
    text = "The left lung is clear. The prostate is normal."
    facts = StudyFacts(lateralities=("R",), modality="MG", sex="female")
    assert [w.check for w in consistency_warnings(text, facts)] == [Check.ANATOMY, Check.LATERALITY, Check.SEX]


def test_the_gate_applies_each_checks_policy() -> None:
    warnings = [SafetyWarning(Check.ANATOMY, "a"), SafetyWarning(Check.TRUNCATED, "t"), SafetyWarning(Check.SEX, "s")]
    default = decide(warnings, SafetySettings())
    assert default.hold and [w.policy for w in default.warnings] == ["hold", "hold", "hold"]
    relaxed = decide(warnings, SafetySettings(anatomy="annotate", truncated="record", sex="annotate"))
    assert not relaxed.hold
    assert [(w.check, w.policy) for w in relaxed.warnings] == [
        (Check.ANATOMY, "annotate"), (Check.TRUNCATED, "record"), (Check.SEX, "annotate")]
    assert relaxed.checks == ("anatomy", "sex", "truncated")  # Check order, each once
    assert not decide([], SafetySettings()).hold


def test_what_the_outputs_state_and_what_the_worklist_filters_on() -> None:
    decision = decide([SafetyWarning(Check.ANATOMY, "the report describes lungs (chest)"),
                       SafetyWarning(Check.TRUNCATED, "cut off")], SafetySettings(truncated="record"))
    stored = decision.stored()
    assert applied_warnings(stored) == list(decision.warnings)
    assert stated_warnings(stored) == ["Automated check warning (anatomy): the report describes lungs (chest)."]
    assert stated_warnings([{"check": "nonsense", "policy": "hold", "message": "x"}, "junk", {}]) == []
    column = checks_column(decision.checks)
    assert column == " anatomy truncated " and column_checks(column) == ("anatomy", "truncated")
    assert checks_column(()) == "" and column_checks(None) == ()


def test_another_studys_report_mixed_into_the_right_one_is_an_anatomy_warning() -> None:
    text = "No intracranial haemorrhage. The lungs are clear, no pneumothorax."
    warnings = consistency_warnings(text, StudyFacts(modality="CT", profile="ct_head"))
    assert [w.check for w in warnings] == [Check.ANATOMY]
    assert "not in this study" in warnings[0].message
    # What a chest or abdominal study normally shows beside its own region is no mismatch.
    assert checks("The lungs are clear. Normal bowel gas pattern.", modality="CR", profile="cxr") == []
    assert checks("Liver normal. Small right pleural effusion.", modality="CT", profile="ct_abdomen") == []
