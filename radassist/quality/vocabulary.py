"""Which findings are labelled for a study's prompt profile, and the words that mention each.

A profile's vocabulary is the first of: the site vocabulary that lists the profile
(``[[quality.vocabularies]]``), the 14 CheXpert observations for the profiles in
``[quality] chexpert_profiles``, or none (then only the text metrics and the critical findings are
measured).  The critical findings (``[quality] critical_findings``) are labelled for every profile,
whether or not the vocabulary holds them; they count in the critical-miss flags, not in F1.

The normal finding (CheXpert's ``No Finding``) has no words of its own: it is positive exactly when
no abnormal finding of the vocabulary or the critical list is positive or uncertain, and absent
otherwise; support devices are not abnormal.  This is the CheXpert labeler's rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from radassist.config.quality import FindingSettings, QualitySettings, VocabularySettings
from radassist.quality.synonyms import BUILTIN, CHEXPERT_ORDER, NO_FINDING, SUPPORT_DEVICES, Words

CHEXPERT = "chexpert"
NONE = "none"


@dataclass(frozen=True)
class Finding:
    """A finding and the phrases (lower case) that mention it or state its absence."""

    name: str
    mentions: tuple[str, ...]
    negative: tuple[str, ...] = ()
    abnormal: bool = True


@dataclass(frozen=True)
class Vocabulary:
    """The findings scored for one profile; ``critical`` are labelled too but only flagged."""

    name: str
    findings: tuple[Finding, ...]
    normal_finding: str | None
    critical: tuple[Finding, ...]

    @property
    def finding_names(self) -> tuple[str, ...]:
        """The scored findings in order, the normal finding first when there is one."""
        names = tuple(f.name for f in self.findings)
        return (self.normal_finding, *names) if self.normal_finding else names

    @property
    def critical_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.critical)

    @property
    def labelled(self) -> tuple[Finding, ...]:
        """Every finding the labeler looks for: the vocabulary's, then critical ones it lacks."""
        names = {f.name for f in self.findings}
        return self.findings + tuple(f for f in self.critical if f.name not in names)


DEGREES = ("mildly", "moderately", "markedly", "severely", "slightly", "minimally", "again", "now")
"""Words that may stand between ``is``/``are`` and the last word ("heart size is mildly enlarged")."""


def inflections(phrase: str) -> tuple[str, ...]:
    """``phrase``, the plural of its last word in ``s`` or ``ies`` (``opacity`` → ``opacities``), and, for
    a phrase ending in ``is``/``are`` + word, the same with each of :data:`DEGREES` before the word."""
    phrase = " ".join(phrase.lower().split())
    head, _, last = phrase.rpartition(" ")
    if head.endswith((" is", " are")):
        return (phrase, *(f"{head} {degree} {last}" for degree in DEGREES))
    if not last.isalpha() or len(last) < 3 or last.endswith(("s", "x", "ed")):
        return (phrase,)
    plural = last[:-1] + "ies" if last.endswith("y") and last[-2] not in "aeiou" else last + "s"
    return (phrase, f"{head} {plural}".strip())


def _finding(name: str, words: Words, *, abnormal: bool = True) -> Finding:
    mentions = tuple(dict.fromkeys(p for phrase in words.mentions for p in inflections(phrase)))
    negative = tuple(dict.fromkeys(p for phrase in words.negative for p in inflections(phrase)))
    return Finding(name=name, mentions=mentions, negative=negative, abnormal=abnormal)


def builtin_finding(name: str) -> Finding:
    """A finding of the built-in table by name; an unknown name is mentioned by itself only."""
    words = BUILTIN.get(name, Words((name,)))
    return _finding(name, words, abnormal=name != SUPPORT_DEVICES)


def _site_finding(spec: FindingSettings) -> Finding:
    if spec.synonyms:
        words = Words(spec.synonyms, spec.negative_phrases)
    else:
        builtin = BUILTIN.get(spec.name, Words((spec.name,)))
        words = Words(builtin.mentions, spec.negative_phrases or builtin.negative)
    return _finding(spec.name, words, abnormal=spec.abnormal)


def _critical(settings: QualitySettings, own: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """The critical findings, each with the words of the vocabulary, else of any site vocabulary, else built in."""
    site = {spec.name: spec for vocab in settings.vocabularies for spec in vocab.findings}
    by_name = {f.name: f for f in own}
    out: list[Finding] = []
    for name in dict.fromkeys(settings.critical_findings):
        if name in by_name:
            out.append(by_name[name])
        elif name in site:
            out.append(_site_finding(site[name]))
        else:
            out.append(builtin_finding(name))
    return tuple(out)


def chexpert_findings() -> tuple[Finding, ...]:
    """The 13 CheXpert observations that have words (``No Finding`` is derived), in CheXpert order."""
    return tuple(builtin_finding(name) for name in CHEXPERT_ORDER if name != NO_FINDING)


def _site_vocabulary(spec: VocabularySettings, settings: QualitySettings) -> Vocabulary:
    findings = tuple(_site_finding(f) for f in spec.findings)
    return Vocabulary(spec.name, findings, spec.normal_finding or None, _critical(settings, findings))


def vocabulary_for(profile: str, settings: QualitySettings) -> Vocabulary:
    """The vocabulary measured for studies drafted with prompt profile ``profile``."""
    for spec in settings.vocabularies:
        if profile in spec.profiles:
            return _site_vocabulary(spec, settings)
    if profile in settings.chexpert_profiles:
        findings = chexpert_findings()
        return Vocabulary(CHEXPERT, findings, NO_FINDING, _critical(settings, findings))
    return Vocabulary(NONE, (), None, _critical(settings, ()))

