"""compare_pair on hand-made draft/final pairs, with every expected value worked out by hand."""

from __future__ import annotations

import dataclasses
import json

import pytest

from radassist.config.quality import QualitySettings
from radassist.quality import Label, PairMetrics, Side, compare_pair

SETTINGS = QualitySettings()


def labels(pair: PairMetrics) -> dict[str, tuple[str, str]]:
    """The findings either report mentions, as (draft label, final label)."""
    return {
        r.finding: (r.draft.value, r.final.value)
        for r in pair.findings
        if (r.draft, r.final) != (Label.ABSENT, Label.ABSENT)
    }


def test_identical_texts_score_perfectly() -> None:
    text = "FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION: Left effusion."
    pair = compare_pair(text, text, "cxr", SETTINGS)
    assert (pair.text.edit_rate, pair.text.rouge_l, pair.text.bleu4, pair.text.chrf) == (0.0, 1.0, 1.0, 1.0)
    assert pair.finding_f1 == 1.0 and pair.finding_agreement == 1.0
    assert pair.critical_misses == () and pair.critical_overcalls == ()
    assert pair.laterality.agreement == 1.0 and pair.laterality.swaps == ()
    assert labels(pair) == {"Pneumothorax": ("negative", "negative"), "Pleural Effusion": ("positive", "positive")}


def test_texts_equal_after_normalisation_score_perfectly() -> None:
    draft = "Findings:\n**Lungs are clear.** No pneumothorax!"
    final = "INDICATION: cough.\nFINDINGS: lungs are clear; no pneumothorax.\nElectronically signed by Dr. X"
    pair = compare_pair(draft, final, "cxr", SETTINGS)
    assert (pair.text.edit_rate, pair.text.rouge_l, pair.text.bleu4, pair.text.chrf) == (0.0, 1.0, 1.0, 1.0)


def test_one_negated_finding() -> None:
    draft = "Findings: Mild cardiomegaly. Small right pleural effusion.\nImpression: Cardiomegaly and right effusion."
    final = "FINDINGS: Mild cardiomegaly. No pleural effusion.\nIMPRESSION: Cardiomegaly."
    pair = compare_pair(draft, final, "cxr", SETTINGS)
    assert labels(pair) == {"Cardiomegaly": ("positive", "positive"), "Pleural Effusion": ("positive", "negative")}
    assert pair.finding_agreement == 0.5  # 1 of the 2 mentioned findings
    assert pair.finding_f1 == pytest.approx(2 / 3)  # TP 1 (cardiomegaly), FP 1 (effusion), FN 0
    assert pair.critical_misses == ()
    # final "mild cardiomegaly no pleural effusion cardiomegaly" (6 words); the draft needs 1 substitution
    # (no → small) and 4 insertions (right; and right effusion): 5/6.  LCS 5 words: P 5/10, R 5/6, F 5/8.
    assert (pair.text.final_words, pair.text.draft_words) == (6, 10)
    assert (pair.text.substitutions, pair.text.deletions, pair.text.insertions) == (1, 0, 4)
    assert pair.text.edit_rate == pytest.approx(5 / 6)
    assert pair.text.rouge_l == pytest.approx(5 / 8)


def test_one_uncertain_finding() -> None:
    pair = compare_pair("Possible right lower lobe pneumonia.", "Right lower lobe pneumonia.", "cxr", SETTINGS)
    assert labels(pair) == {"Pneumonia": ("uncertain", "positive")}
    assert pair.finding_agreement == 0.0  # the four-way labels differ
    assert pair.finding_f1 == 1.0  # uncertain counts as positive: a true positive
    assert pair.text.edit_rate == pytest.approx(1 / 4)  # one inserted word against 4
    assert pair.text.rouge_l == pytest.approx(8 / 9)  # P 4/5, R 1
    assert [(c.finding, c.outcome) for c in pair.laterality.compared] == [("Pneumonia", "agree")]


def test_one_missed_critical_finding_negated_in_the_draft() -> None:
    pair = compare_pair("No pneumothorax. Lungs are clear.", "Small right apical pneumothorax.", "cxr", SETTINGS)
    assert labels(pair) == {"No Finding": ("positive", "absent"), "Pneumothorax": ("negative", "positive")}
    assert pair.critical_misses == ("Pneumothorax",)
    assert pair.critical_overcalls == ()
    assert pair.finding_f1 == 0.0  # TP 0, FP 1 (No Finding), FN 1 (pneumothorax)
    assert pair.finding_agreement == 0.0
    assert pair.laterality.compared == () and pair.laterality.agreement is None


def test_missed_critical_finding_absent_from_the_draft_and_outside_the_vocabulary() -> None:
    pair = compare_pair("Lungs are clear.", "Free air under the right hemidiaphragm.", "cxr", SETTINGS)
    assert pair.critical_misses == ("Pneumoperitoneum",)
    critical = {c.finding: (c.draft, c.final) for c in pair.critical}
    assert critical["Pneumoperitoneum"] == (Label.ABSENT, Label.POSITIVE)
    assert "Pneumoperitoneum" not in {r.finding for r in pair.findings}  # flagged, not scored in F1
    # Pneumoperitoneum is abnormal, so the final is no longer "No Finding".
    assert labels(pair) == {"No Finding": ("positive", "absent")}


def test_critical_overcall() -> None:
    pair = compare_pair("Large left pneumothorax.", "No pneumothorax.", "cxr", SETTINGS)
    assert pair.critical_overcalls == ("Pneumothorax",) and pair.critical_misses == ()


def test_one_laterality_swap() -> None:
    pair = compare_pair("Left pleural effusion.", "Right pleural effusion.", "cxr", SETTINGS)
    assert labels(pair) == {"Pleural Effusion": ("positive", "positive")}
    assert pair.finding_f1 == 1.0 and pair.finding_agreement == 1.0
    (row,) = pair.laterality.compared
    assert (row.finding, row.draft, row.final, row.outcome) == ("Pleural Effusion", Side.LEFT, Side.RIGHT, "swap")
    assert pair.laterality.agreement == 0.0 and pair.laterality.swaps == ("Pleural Effusion",)
    assert pair.text.edit_rate == pytest.approx(1 / 3) and pair.text.rouge_l == pytest.approx(2 / 3)


def test_one_side_against_bilateral_differs_without_a_swap() -> None:
    pair = compare_pair("Left pleural effusion.", "Bilateral pleural effusions.", "cxr", SETTINGS)
    (row,) = pair.laterality.compared
    assert (row.draft, row.final, row.outcome) == (Side.LEFT, Side.BILATERAL, "differ")
    assert pair.laterality.swaps == ()


def test_all_four_in_one_pair() -> None:
    draft = (
        "Findings: Left pleural effusion. No pneumothorax. Possible pneumonia. Mild cardiomegaly.\n"
        "Impression: Left effusion."
    )
    final = (
        "FINDINGS: Right pleural effusion. Small right pneumothorax. Right lower lobe pneumonia. "
        "Heart size is normal.\nIMPRESSION: Right pneumothorax. Right effusion."
    )
    pair = compare_pair(draft, final, "cxr", SETTINGS)
    assert labels(pair) == {
        "Cardiomegaly": ("positive", "negative"),
        "Pneumonia": ("uncertain", "positive"),
        "Pneumothorax": ("negative", "positive"),
        "Pleural Effusion": ("positive", "positive"),
    }
    assert pair.finding_agreement == 0.25  # only the effusion's labels match
    assert pair.finding_f1 == pytest.approx(4 / 6)  # TP 2 (effusion, pneumonia), FP 1 (cardiomegaly), FN 1
    assert pair.critical_misses == ("Pneumothorax",)
    assert pair.laterality.swaps == ("Pleural Effusion",)
    assert [c.finding for c in pair.laterality.compared] == ["Pleural Effusion"]  # the draft gives no side elsewhere


def test_profile_without_vocabulary_still_flags_critical_findings() -> None:
    pair = compare_pair("No acute abnormality.", "Small subdural haematoma on the left.", "ct_head", SETTINGS)
    assert pair.vocabulary == "none" and pair.findings == ()
    assert pair.finding_f1 == 1.0  # nothing scored
    assert pair.critical_misses == ("Intracranial Haemorrhage",)


def test_metrics_round_trip_through_json() -> None:
    pair = compare_pair("Left pleural effusion. Possible pneumonia.", "Right pleural effusion.", "cxr", SETTINGS)
    data = json.loads(json.dumps(dataclasses.asdict(pair)))
    assert data["findings"][0] == {"finding": "No Finding", "draft": "absent", "final": "absent"}
    assert PairMetrics.from_dict(data) == pair
    assert pair.to_dict() == dataclasses.asdict(pair)


def test_report_text_is_not_kept_in_the_metrics() -> None:
    sentinel = "Zanzibarquux"
    pair = compare_pair(f"{sentinel} left pleural effusion.", f"{sentinel} right effusion.", "cxr", SETTINGS)
    assert sentinel.lower() not in json.dumps(pair.to_dict()).lower()
