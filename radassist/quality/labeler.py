"""The rule labeler: each finding of a vocabulary as positive / negative / uncertain / absent in a report.

One spaCy pipeline per vocabulary, built once and reused (building costs far more than labelling):

1. ``spacy.blank("en")``: spaCy's English tokenizer, no downloaded model.
2. ``sentencizer``: sentences end at ``.``, ``!``, ``?`` and at line breaks (reports list findings
   one per line without full stops).
3. ``span_ruler``: every phrase of every finding (:mod:`radassist.quality.synonyms`, site
   vocabularies) matched case-insensitively on whole tokens.  Spans may overlap ("heart size and
   mediastinal contours are normal" is a negative mention of two findings).
4. ``negex`` twice (negspacy): once with the negation cues, once with the uncertainty cues of
   :mod:`radassist.quality.termsets`, each marking the mentions in its scope.

A mention is **negative** when it is a negative phrase ("heart size is normal") or negated,
**uncertain** when an uncertainty cue reaches it, else **positive**.  When both a negation and an
uncertainty cue reach a mention, the cue nearer to it decides ("possible effusion without
pneumothorax": the pneumothorax is negative; "no effusion, likely atelectasis": uncertain).  A
finding's label in the report is its strongest mention (:mod:`radassist.quality.labels`), its side
comes from :mod:`radassist.quality.laterality`, and the vocabulary's normal finding is derived.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import spacy
from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)
from spacy.language import Language
from spacy.tokens import Doc, Span

from radassist.quality.labels import Label, Side, side_of, strongest
from radassist.quality.laterality import nearest_mention, side_word
from radassist.quality.termsets import NEGATION, UNCERTAINTY
from radassist.quality.vocabulary import Vocabulary

SPAN_KEY = "findings"
_NEGATIVE_PHRASE = "negative"
_NEGATED = "radassist_negated"
_UNCERTAIN = "radassist_uncertain"


@dataclass(frozen=True)
class Mention:
    """One mention of a finding: where it is (line, token offsets in the line) and how it is stated."""

    finding: str
    line: int
    start: int
    end: int
    label: Label
    side: Side | None = None


@dataclass(frozen=True)
class ReportLabels:
    """What a labeler read in one report: a label per finding and the side of each positive one."""

    labels: dict[str, Label]
    sides: dict[str, Side | None]
    mentions: tuple[Mention, ...] = field(default=(), repr=False)

    def label(self, finding: str) -> Label:
        return self.labels.get(finding, Label.ABSENT)


def build_pipeline(vocabulary: Vocabulary) -> Language:
    """The spaCy pipeline that finds and qualifies the mentions of ``vocabulary``'s findings."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer", config={"punct_chars": [".", "!", "?", "\n"]})
    ruler = nlp.add_pipe(
        "span_ruler", config={"spans_key": SPAN_KEY, "phrase_matcher_attr": "LOWER", "overwrite": True}
    )
    patterns: list[dict[str, Any]] = []
    for finding in vocabulary.labelled:
        patterns.extend({"label": finding.name, "pattern": p} for p in finding.mentions)
        patterns.extend({"label": finding.name, "pattern": p, "id": _NEGATIVE_PHRASE} for p in finding.negative)
    ruler.add_patterns(patterns)  # type: ignore[attr-defined]
    for name, termset in ((_NEGATED, NEGATION), (_UNCERTAIN, UNCERTAINTY)):
        nlp.add_pipe(
            "negex", name=name, config={"neg_termset": termset, "extension_name": name, "span_keys": [SPAN_KEY]}
        )
    return nlp


def _cue_distance(nlp: Language, pipe: str, doc: Doc, span: Span) -> int:
    """Tokens between ``span`` and the nearest cue of ``pipe`` that reaches it in its sentence."""
    preceding, following, _ = nlp.get_pipe(pipe).process_negations(doc)  # type: ignore[attr-defined]
    sent = span.sent
    distances = [span.start - end for _, start, end in preceding if sent.start <= start and end <= span.start]
    distances += [start - span.end for _, start, end in following if start >= span.end and end <= sent.end]
    return min(distances, default=len(doc))


def _mention_label(nlp: Language, doc: Doc, span: Span) -> Label:
    if span.id_ == _NEGATIVE_PHRASE:
        return Label.NEGATIVE
    negated, uncertain = span._.get(_NEGATED), span._.get(_UNCERTAIN)
    if negated and uncertain:
        nearer_negation = _cue_distance(nlp, _NEGATED, doc, span) < _cue_distance(nlp, _UNCERTAIN, doc, span)
        return Label.NEGATIVE if nearer_negation else Label.UNCERTAIN
    if uncertain:
        return Label.UNCERTAIN
    return Label.NEGATIVE if negated else Label.POSITIVE


def _mention_sides(doc: Doc, spans: list[Span]) -> list[tuple[bool, bool]]:
    """(left, right) of each span (sorted by start), from the side words of its sentence (see laterality)."""
    sides = [(False, False)] * len(spans)
    first = 0
    for sent in doc.sents:
        while first < len(spans) and spans[first].start < sent.start:
            first += 1
        last = first
        while last < len(spans) and spans[last].start < sent.end:
            last += 1
        bounds = [(s.start, s.end) for s in spans[first:last]]
        for token in sent:
            word = side_word(token.text)
            nearest = None if word is None else nearest_mention(token.i, bounds)
            if word is not None and nearest is not None:
                left, right = sides[first + nearest]
                sides[first + nearest] = (left or word[0], right or word[1])
        first = last
    return sides


class RuleLabeler:
    """Labels reports over one vocabulary with the pipeline of :func:`build_pipeline`."""

    name = "rule"

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.nlp = build_pipeline(vocabulary)

    def mentions(self, text: str) -> tuple[Mention, ...]:
        """Every finding mention in ``text`` (a report body), in reading order.

        Each line is its own document: sentences end at line breaks anyway, and negspacy's scope
        search grows with the square of a document's length.
        """
        found: list[Mention] = []
        for line, doc in enumerate(self.nlp.pipe(text.splitlines())):
            spans = sorted(doc.spans[SPAN_KEY], key=lambda s: (s.start, s.end, s.label_))
            sides = _mention_sides(doc, spans)
            found.extend(
                Mention(s.label_, line, s.start, s.end, _mention_label(self.nlp, doc, s), side_of(*side))
                for s, side in zip(spans, sides, strict=True)
            )
        return tuple(found)

    def label(self, text: str) -> ReportLabels:
        """The label of every finding of the vocabulary (and the critical ones) in ``text``."""
        mentions = self.mentions(text)
        by_finding: dict[str, list[Mention]] = defaultdict(list)
        for mention in mentions:
            by_finding[mention.finding].append(mention)
        labels = {f.name: strongest(m.label for m in by_finding[f.name]) for f in self.vocabulary.labelled}
        sides = {
            name: side_of_mentions(m for m in found if m.label.counts_positive)
            for name, found in by_finding.items()
            if labels[name].counts_positive
        }
        return ReportLabels(with_normal(self.vocabulary, labels), sides, mentions)


def side_of_mentions(mentions: Iterable[Mention]) -> Side | None:
    """The side of a finding from the sides of its ``mentions`` (left and right make bilateral)."""
    sides = {m.side for m in mentions}
    return side_of(bool(sides & {Side.LEFT, Side.BILATERAL}), bool(sides & {Side.RIGHT, Side.BILATERAL}))


def with_normal(vocabulary: Vocabulary, labels: dict[str, Label]) -> dict[str, Label]:
    """``labels`` plus the derived normal finding: positive when no abnormal finding counts positive."""
    if not vocabulary.normal_finding:
        return labels
    abnormal = {f.name for f in vocabulary.labelled if f.abnormal}
    found = any(labels.get(name, Label.ABSENT).counts_positive for name in abnormal)
    return {vocabulary.normal_finding: Label.ABSENT if found else Label.POSITIVE, **labels}
