"""Percentile bootstrap intervals and paired differences: seeded, and right on known answers."""

from __future__ import annotations

import math

import pytest

from radassist.quality import Label, PairTable, bootstrap_interval, paired_difference
from tests.quality.factories import pair

P, N = Label.POSITIVE, Label.NEGATIVE


def proportion_table(hits: int, n: int) -> PairTable:
    """``n`` pairs whose rouge_l is 1 for ``hits`` of them and 0 otherwise."""
    return PairTable.from_pairs([pair(rouge_l=1.0 if i < hits else 0.0) for i in range(n)])


def test_interval_of_a_proportion_matches_the_normal_approximation() -> None:
    interval = bootstrap_interval(proportion_table(60, 200), "rouge_l", samples=4000, seed=1)
    half_width = 1.96 * math.sqrt(0.3 * 0.7 / 200)
    assert interval.estimate == 0.3
    assert interval.low == pytest.approx(0.3 - half_width, abs=0.015)
    assert interval.high == pytest.approx(0.3 + half_width, abs=0.015)
    assert (interval.pairs, interval.samples, interval.confidence) == (200, 4000, 0.95)


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    table = PairTable.from_pairs([pair(rouge_l=i / 37) for i in range(37)])
    first = bootstrap_interval(table, "rouge_l", samples=500, seed=7)
    assert bootstrap_interval(table, "rouge_l", samples=500, seed=7) == first
    assert bootstrap_interval(table, "rouge_l", samples=500, seed=8) != first
    assert first.low < first.estimate < first.high


def test_constant_values_give_a_point_interval() -> None:
    interval = bootstrap_interval(PairTable.from_pairs([pair(rouge_l=0.4)] * 20), "rouge_l", samples=200)
    assert (interval.low, interval.estimate, interval.high) == pytest.approx((0.4, 0.4, 0.4))


def test_f1_interval_resamples_whole_pairs() -> None:
    rows = [pair(findings={"Effusion": (P, P)})] * 30 + [pair(findings={"Effusion": (N, P)})] * 10
    interval = bootstrap_interval(PairTable.from_pairs(rows), "finding_f1_micro", samples=1000)
    assert interval.estimate == pytest.approx(60 / 70)
    assert 0.7 < interval.low < interval.estimate < interval.high <= 1.0


def test_paired_difference_of_a_constant_improvement_is_exact() -> None:
    run_a = PairTable.from_pairs([pair(rouge_l=v / 20) for v in range(20)])
    run_b = PairTable.from_pairs([pair(rouge_l=v / 20 + 0.1) for v in range(20)])
    diff = paired_difference(run_a, run_b, "rouge_l", samples=300)
    assert (diff.low, diff.estimate, diff.high) == pytest.approx((0.1, 0.1, 0.1))
    assert diff.excludes_zero


def test_paired_difference_is_narrower_than_separate_intervals() -> None:
    values = [((i * 7) % 20) / 20 for i in range(40)]
    run_a = PairTable.from_pairs([pair(rouge_l=v) for v in values])
    run_b = PairTable.from_pairs([pair(rouge_l=min(1.0, v + (0.05 if i % 2 else 0.0))) for i, v in enumerate(values)])
    diff = paired_difference(run_a, run_b, "rouge_l", samples=1000)
    separate = bootstrap_interval(run_a, "rouge_l", samples=1000)
    assert diff.high - diff.low < (separate.high - separate.low) / 3
    assert diff.low >= 0.0


def test_a_single_pair_and_bad_arguments() -> None:
    one = bootstrap_interval(PairTable.from_pairs([pair(rouge_l=0.3)]), "rouge_l")
    assert (one.low, one.high) == (0.3, 0.3)
    with pytest.raises(ValueError, match="same studies"):
        paired_difference(proportion_table(1, 3), proportion_table(1, 4), "rouge_l")
    with pytest.raises(ValueError, match="at least one pair"):
        bootstrap_interval(PairTable.from_pairs([]), "rouge_l")
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval(proportion_table(1, 3), "rouge_l", confidence=95)
