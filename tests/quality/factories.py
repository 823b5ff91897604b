"""Hand-built PairMetrics with chosen values, for tests of figures over sets of pairs."""

from __future__ import annotations

from collections.abc import Mapping

from radassist.quality import Label, LateralityResult, PairMetrics, TextMetrics


def pair(
    *,
    rouge_l: float = 0.5,
    edit_rate: float = 0.5,
    findings: Mapping[str, tuple[Label, Label]] | None = None,
    critical_misses: tuple[str, ...] = (),
    swaps: tuple[str, ...] = (),
) -> PairMetrics:
    from radassist.quality.agreement import compare_findings

    rows = dict(findings or {})
    agreement = compare_findings(
        list(rows), [], {k: v[0] for k, v in rows.items()}, {k: v[1] for k, v in rows.items()}
    )
    return PairMetrics(
        profile="cxr",
        vocabulary="chexpert",
        labeler="rule",
        text=TextMetrics(edit_rate, 0, 0, 0, 10, 10, rouge_l, rouge_l, rouge_l),
        findings=agreement.findings,
        finding_agreement=agreement.agreement,
        finding_f1=agreement.f1,
        critical=(),
        critical_misses=critical_misses,
        critical_overcalls=(),
        laterality=LateralityResult((), None, swaps),
    )
