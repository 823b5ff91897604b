"""The checks on a draft's text against what the study is: anatomy, laterality, sex.

Each returns :class:`SafetyWarning` values: which check fired and, in words, what it saw.  A warning
is a prompt for the radiologist, not a verdict; what happens to the draft is the gate's business
(:mod:`radassist.safety.gate`).  The output checks (cut off at the token limit, repetitive) are
made where the model's output is read (:mod:`radassist.models.checks`) and use the same types.
Messages name only words of our own vocabulary and header codes, never the report's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from radassist.safety.vocabulary import (
    BILATERAL,
    REGION_TERMS,
    SEX_TERMS,
    SIDE_NAMES,
    SIDE_WORDS,
    mentions,
    study_regions,
)


class Check(StrEnum):
    ANATOMY = "anatomy"
    LATERALITY = "laterality"
    SEX = "sex"
    TRUNCATED = "truncated"
    REPETITIVE = "repetitive"


EXPLANATIONS: dict[Check, str] = {
    Check.ANATOMY: (
        "The report describes a body region this study did not image (judged from the prompt profile, "
        "BodyPartExamined, the descriptions and the modality), and either says nothing about the region it did "
        "image or describes a region this kind of study does not show. The model may have written the report "
        "of another kind of study."
    ),
    Check.LATERALITY: (
        "Every image is labelled one side (ImageLaterality/Laterality), but the report names the other side. "
        "A finding may be on the wrong side, or describe a side that was not imaged."
    ),
    Check.SEX: (
        "The report describes an organ that the patient's recorded sex (PatientSex) does not have: a finding "
        "may be invented, or the sex in the header may be wrong."
    ),
    Check.TRUNCATED: (
        "The model stopped at its length limit ([model] max_new_tokens): the report may be cut off, and the "
        "Impression missing or incomplete."
    ),
    Check.REPETITIVE: (
        "The model repeated a word or phrase over and over instead of reporting: the text is probably "
        "unusable."
    ),
}
"""What each check means, as the study page shows it beside the warning."""


@dataclass(frozen=True, slots=True)
class SafetyWarning:
    """One check that fired, and what it saw, in words."""

    check: Check
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check.value, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SafetyWarning | None:
        """The warning stored as ``{check, message}``; None for anything else."""
        try:
            return cls(Check(str(data["check"])), str(data["message"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class StudyFacts:
    """What the headers and the chosen prompt profile say about the study (no patient identity)."""

    lateralities: tuple[str, ...] = ()
    """``R``/``L``/``B`` of the images shown (ImageLaterality, else Laterality)."""
    body_part: str | None = None
    modality: str | None = None
    sex: str | None = None
    """``male``/``female`` (as :class:`radassist.imaging.context.ClinicalContext` says it), else None."""
    profile: str | None = None
    descriptions: tuple[str | None, ...] = field(default=())
    """Study and series descriptions."""


def laterality(text: str, facts: StudyFacts) -> SafetyWarning | None:
    """Every image one side, and the report names the other side (and neither both sides nor bilateral)."""
    sides = {s for s in facts.lateralities if s in SIDE_NAMES}
    if len(sides) != 1 or "B" in facts.lateralities:
        return None
    imaged = next(iter(sides))
    other = "L" if imaged == "R" else "R"
    if not SIDE_WORDS[other].search(text) or BILATERAL.search(text):
        return None
    return SafetyWarning(Check.LATERALITY,
                         f"the report mentions the {SIDE_NAMES[other]} side, but every image is labelled "
                         f"{SIDE_NAMES[imaged]} (ImageLaterality/Laterality {imaged})")


def anatomy(text: str, facts: StudyFacts) -> SafetyWarning | None:
    """The report says nothing about the imaged region but describes another one, or it describes a
    region that this kind of study does not show at all (another study's report mixed in)."""
    judged = study_regions(facts.profile, facts.body_part, facts.modality, facts.descriptions)
    if judged is None:
        return None
    regions, source = judged
    found = {r: terms for r in REGION_TERMS if (terms := mentions(text, REGION_TERMS[r]))}
    about_it = any(r in found for r in regions.expected)
    other = {r: terms for r, terms in found.items() if r not in regions.expected}
    foreign = {r: terms for r, terms in other.items() if r not in regions.allowed}
    shown = other if not about_it else foreign
    if not shown:
        return None
    described = "; ".join(f"{', '.join(terms)} ({region})" for region, terms in shown.items())
    imaged = " or ".join(sorted(regions.expected))
    said = "says nothing about it" if not about_it else "that region is not in this study"
    return SafetyWarning(Check.ANATOMY, f"the report describes {described}, but this study images the {imaged} "
                                        f"(judged from {source}) and {said}")


def sex(text: str, facts: StudyFacts) -> SafetyWarning | None:
    """An organ the recorded sex does not have."""
    if facts.sex not in SEX_TERMS:
        return None
    found = mentions(text, SEX_TERMS[facts.sex])
    if not found:
        return None
    return SafetyWarning(Check.SEX, f"the report mentions {', '.join(found)}, but PatientSex is {facts.sex}")


def consistency_warnings(text: str, facts: StudyFacts) -> list[SafetyWarning]:
    """Every consistency check that fires on ``text`` (the draft's Findings and Impression)."""
    found = (check(text, facts) for check in (anatomy, laterality, sex))
    return [w for w in found if w is not None]


def stored_warnings(values: Iterable[Any]) -> list[SafetyWarning]:
    """The warnings stored as ``{check, message}`` dicts; anything else left out."""
    out = []
    for value in values:
        warning = SafetyWarning.from_dict(value) if isinstance(value, Mapping) else None
        if warning is not None:
            out.append(warning)
    return out
