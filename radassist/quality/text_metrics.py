"""How much the radiologist changed the draft: edit rate, ROUGE-L, BLEU-4 and chrF.

All four read both texts after :func:`radassist.quality.normalise.normalise` (report body, lower
case, no punctuation) and treat the **final report as the reference** and the draft as the
hypothesis, the way report-generation papers score a generated report against the radiologist's.

* ``edit_rate``: word error rate from jiwer, (substitutions + deletions + insertions) / words of the
  final.  0 means the draft was signed unchanged; it exceeds 1 when the draft was much longer than
  the final.  A final with no words scores 1 against a non-empty draft.
* ``rouge_l``: ROUGE-L F-measure from Google's rouge-score (longest common word subsequence), 0 to 1.
* ``bleu4``: sentence BLEU with up to 4-grams from sacrebleu (``effective_order``, exponential
  smoothing, its ``13a`` tokenizer), divided by 100 to lie in 0 to 1.
* ``chrf``: chrF from sacrebleu (character 6-grams, beta 2), divided by 100.

Two empty texts are identical: edit rate 0, every similarity 1.  Over a set of pairs these are
averaged per pair (the Quality page shows the median edit rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jiwer
from rouge_score import rouge_scorer
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from radassist.quality.metrics import TextMetrics
from radassist.quality.normalise import normalise


@dataclass(frozen=True)
class _Scorers:
    rouge: rouge_scorer.RougeScorer
    bleu: BLEU
    chrf: CHRF


@cache
def _scorers() -> _Scorers:
    """Scorer objects are built once per process: building them costs more than scoring one pair."""
    return _Scorers(rouge_scorer.RougeScorer(["rougeL"]), BLEU(effective_order=True), CHRF())


def _edits(final: str, draft: str) -> tuple[float, int, int, int]:
    if not final:
        words = len(draft.split())
        return (1.0 if words else 0.0), 0, 0, words
    out = jiwer.process_words(final, draft)
    return float(out.wer), out.substitutions, out.deletions, out.insertions


def text_metrics(draft: str, final: str) -> TextMetrics:
    """Compare ``draft`` (what the model wrote) with ``final`` (what the radiologist signed)."""
    draft_n, final_n = normalise(draft), normalise(final)
    rate, subs, dels, ins = _edits(final_n, draft_n)
    counts = {"final_words": len(final_n.split()), "draft_words": len(draft_n.split())}
    if draft_n == final_n:
        return TextMetrics(rate, subs, dels, ins, **counts, rouge_l=1.0, bleu4=1.0, chrf=1.0)
    scorers = _scorers()
    rouge = scorers.rouge.score(final_n, draft_n)["rougeL"].fmeasure
    bleu = scorers.bleu.sentence_score(draft_n, [final_n]).score / 100.0
    chrf = scorers.chrf.sentence_score(draft_n, [final_n]).score / 100.0
    return TextMetrics(rate, subs, dels, ins, **counts, rouge_l=float(rouge), bleu4=float(bleu), chrf=float(chrf))
