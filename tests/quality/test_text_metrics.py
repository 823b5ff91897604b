"""The text normalisation and the text-change metrics (jiwer, rouge-score, sacrebleu) on known answers."""

from __future__ import annotations

import pytest

from radassist.quality.normalise import normalise, report_body
from radassist.quality.text_metrics import text_metrics

FINAL_REPORT = """CHEST PA AND LATERAL
INDICATION: Cough and fever.
COMPARISON: None.
FINDINGS: The lungs are clear. Heart size is normal; 1.5 cm nodule. No effusion.
**IMPRESSION:** No acute disease. RECOMMENDATION: CT in 3 months.
Electronically signed by Dr. Example on 2024-01-01"""


def test_report_body_keeps_findings_and_impression_only() -> None:
    assert report_body(FINAL_REPORT) == (
        "The lungs are clear. Heart size is normal; 1.5 cm nodule. No effusion.\nNo acute disease."
    )


def test_report_body_keeps_text_before_the_first_heading_when_findings_has_none() -> None:
    assert report_body("The lungs are clear.\nImpression: Normal chest.") == "The lungs are clear.\nNormal chest."
    assert report_body("Lungs: clear. Heart: normal.") == "Lungs: clear. Heart: normal."


def test_normalise_lowercases_drops_punctuation_keeps_decimals() -> None:
    assert normalise(FINAL_REPORT) == (
        "the lungs are clear heart size is normal 1.5 cm nodule no effusion no acute disease"
    )
    assert normalise("Left-sided effusion (small), 2,5 cm; ÉPANCHEMENT") == "left sided effusion small 2,5 cm épanchement"


def test_one_substitution_in_ten_words() -> None:
    final = "the lungs are clear and there is no pleural effusion"
    draft = "the lungs are clear and here is no pleural effusion"
    m = text_metrics(draft, final)
    assert (m.edit_rate, m.substitutions, m.deletions, m.insertions) == (0.1, 1, 0, 0)
    assert m.rouge_l == pytest.approx(0.9)
    # n-gram precisions 9/10, 7/9, 5/8, 3/7 (the changed word breaks n n-grams of order n), no brevity penalty.
    assert m.bleu4 == pytest.approx((9 / 10 * 7 / 9 * 5 / 8 * 3 / 7) ** 0.25)
    assert 0.8 < m.chrf < 1.0  # characters mostly shared


def test_more_change_scores_lower() -> None:
    final = "small left pleural effusion and mild cardiomegaly without pneumothorax"
    slight = text_metrics("small left pleural effusion and cardiomegaly without pneumothorax", final)
    heavy = text_metrics("no acute cardiopulmonary process", final)
    assert slight.edit_rate < heavy.edit_rate
    assert slight.rouge_l > heavy.rouge_l and slight.bleu4 > heavy.bleu4 and slight.chrf > heavy.chrf


def test_empty_texts() -> None:
    both = text_metrics("", "FINDINGS:")
    assert (both.edit_rate, both.rouge_l, both.bleu4, both.chrf) == (0.0, 1.0, 1.0, 1.0)
    no_final = text_metrics("Left effusion.", "")
    assert (no_final.edit_rate, no_final.insertions, no_final.rouge_l) == (1.0, 2, 0.0)
    no_draft = text_metrics("", "Left effusion.")
    assert (no_draft.edit_rate, no_draft.deletions, no_draft.rouge_l) == (1.0, 2, 0.0)
