"""Figures over sets of pairs: per-finding precision/recall, micro/macro F1, rates, drift."""

from __future__ import annotations

import math

import pytest

from radassist.config.quality import QualitySettings
from radassist.quality import Label, PairTable, drift_status, figure
from tests.quality.factories import pair

P, U, N, A = Label.POSITIVE, Label.UNCERTAIN, Label.NEGATIVE, Label.ABSENT


def chest_set() -> PairTable:
    # Effusion: TP, TP (uncertain draft), FN, FP.  Pneumothorax: FN.  Edema: TN only (undefined).
    return PairTable.from_pairs(
        [
            pair(findings={"Effusion": (P, P), "Pneumothorax": (N, P), "Edema": (N, N)}, critical_misses=("Pneumothorax",)),
            pair(findings={"Effusion": (U, P), "Pneumothorax": (A, A), "Edema": (A, N)}),
            pair(findings={"Effusion": (N, P), "Pneumothorax": (A, A), "Edema": (A, A)}, swaps=("Effusion",)),
            pair(findings={"Effusion": (P, N), "Pneumothorax": (A, A), "Edema": (A, A)}),
        ]
    )


def test_per_finding_precision_recall() -> None:
    summary = chest_set().findings_summary()
    scores = {s.finding: s for s in summary.per_finding}
    effusion = scores["Effusion"]
    assert (effusion.true_positives, effusion.false_positives, effusion.false_negatives) == (2, 1, 1)
    assert (effusion.precision, effusion.recall, effusion.f1, effusion.support) == (2 / 3, 2 / 3, 2 / 3, 3)
    pneumothorax = scores["Pneumothorax"]
    assert (pneumothorax.precision, pneumothorax.recall, pneumothorax.f1) == (None, 0.0, 0.0)
    assert (scores["Edema"].precision, scores["Edema"].recall, scores["Edema"].f1) == (None, None, None)
    assert summary.micro_f1 == pytest.approx(4 / 7)  # TP 2, FP 1, FN 2
    assert summary.macro_f1 == pytest.approx((2 / 3 + 0) / 2)  # edema is undefined and left out


def test_statistics_match_the_summary_and_the_rates() -> None:
    table = chest_set()
    summary = table.findings_summary()
    assert figure(table, "finding_f1_micro") == pytest.approx(summary.micro_f1)
    assert figure(table, "finding_f1_macro") == pytest.approx(summary.macro_f1)
    assert figure(table, "critical_miss_rate") == 0.25
    assert figure(table, "laterality_swap_rate") == 0.25
    assert figure(table, "rouge_l") == 0.5


def test_no_positive_anywhere() -> None:
    table = PairTable.from_pairs([pair(findings={"Edema": (N, N)}), pair(findings={"Edema": (A, A)})])
    assert figure(table, "finding_f1_micro") == 1.0
    assert math.isnan(figure(table, "finding_f1_macro"))
    assert table.findings_summary().macro_f1 is None


def test_median_edit_rate() -> None:
    table = PairTable.from_pairs([pair(edit_rate=v) for v in (0.0, 0.1, 0.9, 0.2, 0.3)])
    assert figure(table, "edit_rate_median") == 0.2
    assert figure(table, "edit_rate_mean") == pytest.approx(0.3)


def test_unknown_metric_is_named() -> None:
    with pytest.raises(ValueError, match="metric must be one of"):
        figure(chest_set(), "accuracy")


def test_drift() -> None:
    settings = QualitySettings(drift_metric="rouge_l", drift_threshold=0.6, drift_min_pairs=3)
    low = PairTable.from_pairs([pair(rouge_l=0.5)] * 3)
    assert drift_status(low, settings).drifted is True
    high = PairTable.from_pairs([pair(rouge_l=0.7)] * 3)
    assert drift_status(high, settings).drifted is False
    too_few = drift_status(PairTable.from_pairs([pair(rouge_l=0.1)] * 2), settings)
    assert (too_few.drifted, too_few.figure, too_few.pairs) == (None, None, 2)
    edits = QualitySettings(drift_metric="edit_rate_median", drift_threshold=0.4, drift_min_pairs=1)
    assert drift_status(PairTable.from_pairs([pair(edit_rate=0.5)]), edits).drifted is True  # higher is worse
    assert drift_status(PairTable.from_pairs([pair(edit_rate=0.3)]), edits).drifted is False
