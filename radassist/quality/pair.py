"""One draft against its final report: every figure of the quality measurement, in one call.

:func:`compare_pair` is the entry point; :class:`Scorer` holds what is built once per process
(the spaCy pipelines, CheXbert) so that many pairs are cheap.  The result is a
:class:`~radassist.quality.metrics.PairMetrics`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from radassist.config.quality import QualitySettings
from radassist.quality.agreement import compare_findings
from radassist.quality.chexbert import ChexbertLabeler, ChexbertReportLabeler, load_chexbert
from radassist.quality.labeler import ReportLabels, RuleLabeler
from radassist.quality.laterality import compare_sides
from radassist.quality.metrics import PairMetrics
from radassist.quality.normalise import report_body
from radassist.quality.text_metrics import text_metrics
from radassist.quality.vocabulary import CHEXPERT, Vocabulary, vocabulary_for


class ReportLabeler(Protocol):
    name: str

    def label(self, text: str) -> ReportLabels: ...


class Scorer:
    """Compares pairs under one ``[quality]`` section; builds each labeler on first use and keeps it."""

    def __init__(self, settings: QualitySettings) -> None:
        self.settings = settings
        self._labelers: dict[str, ReportLabeler] = {}
        self._vocabularies: dict[str, Vocabulary] = {}
        self._chexbert: ChexbertLabeler | None = None
        self._chexbert_loaded = False

    def _load_chexbert(self) -> ChexbertLabeler | None:
        if not self._chexbert_loaded:
            self._chexbert = load_chexbert(self.settings.chexbert_path)
            self._chexbert_loaded = True
        return self._chexbert

    def labeler(self, vocabulary: Vocabulary) -> ReportLabeler:
        """The labeler of ``vocabulary``: CheXbert for the CheXpert one when present, else the rule labeler."""
        labeler = self._labelers.get(vocabulary.name)
        if labeler is None:
            rule = RuleLabeler(vocabulary)
            chexbert = self._load_chexbert() if vocabulary.name == CHEXPERT else None
            labeler = rule if chexbert is None else ChexbertReportLabeler(rule, chexbert)
            self._labelers[vocabulary.name] = labeler
        return labeler

    def compare(self, draft_text: str, final_text: str, profile: str) -> PairMetrics:
        """Every figure for ``draft_text`` against ``final_text`` of a study drafted with ``profile``."""
        vocabulary = self._vocabularies.get(profile)
        if vocabulary is None:
            vocabulary = self._vocabularies[profile] = vocabulary_for(profile, self.settings)
        labeler = self.labeler(vocabulary)
        draft = labeler.label(report_body(draft_text))
        final = labeler.label(report_body(final_text))
        agreement = compare_findings(vocabulary.finding_names, vocabulary.critical_names, draft.labels, final.labels)
        return PairMetrics(
            profile=profile,
            vocabulary=vocabulary.name,
            labeler=labeler.name,
            text=text_metrics(draft_text, final_text),
            findings=agreement.findings,
            finding_agreement=agreement.agreement,
            finding_f1=agreement.f1,
            critical=agreement.critical,
            critical_misses=agreement.critical_misses,
            critical_overcalls=agreement.critical_overcalls,
            laterality=compare_sides(draft.sides, final.sides),
        )


@lru_cache(maxsize=4)
def scorer_for(settings: QualitySettings) -> Scorer:
    """The process's :class:`Scorer` for ``settings`` (settings are frozen, so equal settings share one)."""
    return Scorer(settings)


def compare_pair(draft_text: str, final_text: str, profile: str, settings: QualitySettings) -> PairMetrics:
    """Compare a draft with the final report of the same study; see :class:`PairMetrics` and docs/quality.md."""
    return scorer_for(settings).compare(draft_text, final_text, profile)
