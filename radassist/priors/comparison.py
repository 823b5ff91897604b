"""What a draft and its outputs say of the patient's priors: the studies compared with, or why there is none.

One value, read from the database by :mod:`radassist.prefetch.read` and used by the prompt
(:mod:`radassist.models.prompts`), the SR (:mod:`radassist.sr.comparison`) and the ORU
(:mod:`radassist.hl7.oru`), so all three name the comparison in the same words.  A job whose
search never ran (no ``[[prior_sources]]``) has no comparison at all: its prompt and outputs say
nothing of priors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

MAX_REPORT_CHARS = 4000
"""The longest prior report the prompt quotes; a longer one is cut at a word, marked with an ellipsis."""


@dataclass(frozen=True)
class ComparedStudy:
    """One prior the draft compares with."""

    study_instance_uid: str
    study_date: dt.date | None
    study_description: str = ""
    modalities: tuple[str, ...] = ()
    report: str | None = field(default=None, repr=False)
    """The prior's report (the RIS's signed text, else a verified SR's); None when none was found."""
    report_origin: str | None = None
    """``ris`` or ``sr``."""

    @property
    def title(self) -> str:
        """``XR CHEST 2 VIEWS (DX) of 2023-01-10``: what the prior was and when."""
        what = self.study_description.strip() or "Imaging study"
        if self.modalities:
            what += f" ({', '.join(self.modalities)})"
        when = f" of {self.study_date.isoformat()}" if self.study_date else " of unknown date"
        return what + when


@dataclass(frozen=True)
class Comparison:
    """The priors found for a job, newest first, or why there are none."""

    studies: tuple[ComparedStudy, ...]
    reason_code: str | None
    """None when the search ran to its end; else a ``radassist.priors.REASONS`` key (also with
    studies, when the search was cut short after finding some)."""
    reason: str = ""
    """The reason in plain words."""

    @property
    def available(self) -> bool:
        return bool(self.studies)

    @property
    def newest(self) -> ComparedStudy | None:
        return self.studies[0] if self.studies else None

    def lines(self) -> list[str]:
        """The comparison as a report says it: one line per prior, or why there is none."""
        if self.studies:
            return [f"Comparison: {study.title}." for study in self.studies]
        why = f" {self.reason.strip()}" if self.reason.strip() else ""
        return [f"Comparison: none available.{why}"]


def quoted_report(text: str, limit: int = MAX_REPORT_CHARS) -> str:
    """``text`` on one line per paragraph, at most ``limit`` characters (cut at a word)."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    joined = "\n".join(line for line in lines if line)
    if len(joined) <= limit:
        return joined
    cut = joined[:limit].rsplit(" ", 1)[0].rstrip()
    return cut + " ..."
