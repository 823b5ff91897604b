"""Which of a source's answers are relevant priors, in which order, and which of their images are fetched.

Everything is decided on the source's answers, never on our database: the same patient (ID equal,
and issuer equal when both name one), never the current study, no later than it, within the
rule's years, the rule's modalities and body part, newest first.  A source may match more loosely
than asked (wildcards, case, fuzzy names), so every key it was asked to match is checked again here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from radassist.config.priors import PriorRule
from radassist.imaging.context import NON_IMAGE_MODALITIES
from radassist.priors.answers import InstanceAnswer, SeriesAnswer, StudyAnswer, StudyQuery
from radassist.priors.results import CurrentStudy
from radassist.sr.codes import SERIES_DESCRIPTION as OUR_SR_SERIES_DESCRIPTION


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def study_query(current: CurrentStudy, rule: PriorRule, *, today: dt.date | None = None) -> StudyQuery:
    """The search for ``current``'s patient: from ``rule.within_years`` before the study to its date."""
    end = current.study_date or today or dt.date.today()
    return StudyQuery(patient_id=current.patient_id, date_from=_years_before(end, rule.within_years), date_to=end)


def wanted_modalities(current: CurrentStudy, rule: PriorRule) -> frozenset[str]:
    """The rule's modalities, else the current study's image modalities (empty: any)."""
    if rule.modalities:
        return frozenset(rule.modalities)
    return frozenset(m.upper() for m in current.modalities if m.upper() not in NON_IMAGE_MODALITIES)


def _same_patient(current: CurrentStudy, answer: StudyAnswer) -> bool:
    if answer.patient_id != current.patient_id:
        return False
    issuers = (current.issuer_of_patient_id, answer.issuer_of_patient_id)
    return not all(issuers) or issuers[0] == issuers[1]


def _earlier(current: CurrentStudy, answer: StudyAnswer, query: StudyQuery) -> bool:
    if answer.study_date is None:
        return False  # a study of unknown date cannot be placed "within N years"
    if not query.date_from <= answer.study_date <= query.date_to:
        return False
    if current.study_date is not None and answer.study_date == current.study_date:
        # Same day: earlier only when both times are known and it started before.
        return current.study_time is not None and answer.study_time is not None and (
            answer.study_time < current.study_time
        )
    return True


def relevant_studies(
    current: CurrentStudy, rule: PriorRule, query: StudyQuery, answers: Sequence[StudyAnswer]
) -> list[StudyAnswer]:
    """The answers that may be priors of ``current``, newest first (series are checked later)."""
    wanted = wanted_modalities(current, rule)
    seen: set[str] = set()
    kept: list[StudyAnswer] = []
    for answer in answers:
        uid = answer.study_instance_uid
        if not uid or uid == current.study_instance_uid or uid in seen:
            continue
        if not _same_patient(current, answer) or not _earlier(current, answer, query):
            continue
        if wanted and answer.modalities and not wanted & set(answer.modalities):
            continue
        seen.add(uid)
        kept.append(answer)
    return sorted(kept, key=lambda a: (a.study_date or dt.date.min, a.study_time or dt.time.min), reverse=True)


def _words_in(words: Sequence[str], *texts: str) -> bool:
    haystack = " ".join(texts).upper()
    return any(re.search(rf"\b{re.escape(word)}\b", haystack) for word in words)


def _body_part_matches(current: CurrentStudy, rule: PriorRule, study: StudyAnswer, series: SeriesAnswer) -> bool:
    if rule.body_parts:
        return _words_in(rule.body_parts, series.body_part, series.series_description, study.study_description)
    if not current.body_part:
        return True
    if series.body_part:
        return series.body_part == current.body_part
    return _words_in((current.body_part,), series.series_description, study.study_description)


def relevant_series(
    current: CurrentStudy, rule: PriorRule, study: StudyAnswer, series: Sequence[SeriesAnswer]
) -> list[SeriesAnswer]:
    """The image series of ``study`` that match the rule's modality, body part and description, in series order."""
    wanted = wanted_modalities(current, rule)
    pattern = re.compile(rule.series_description_pattern, re.IGNORECASE) if rule.series_description_pattern else None
    kept = [
        s for s in series
        if s.series_instance_uid
        and s.modality not in NON_IMAGE_MODALITIES
        and (not wanted or s.modality in wanted)
        and _body_part_matches(current, rule, study, s)
        and (pattern is None or pattern.search(s.series_description))
    ]
    return sorted(kept, key=lambda s: (s.series_number is None, s.series_number or 0))


def chosen_instances(rule: PriorRule, instances: Sequence[InstanceAnswer]) -> list[InstanceAnswer]:
    """The images of one series to fetch: those of the rule's views; all when none names a view."""
    usable = [i for i in instances if i.sop_instance_uid]
    if rule.views and any(i.view_position for i in usable):
        usable = [i for i in usable if i.view_position in rule.views]
    return sorted(usable, key=lambda i: (i.instance_number is None, i.instance_number or 0))


def report_series(series: Sequence[SeriesAnswer]) -> list[SeriesAnswer]:
    """The SR series of a prior study that may hold its report; our own draft series are left out."""
    return [
        s for s in series
        if s.modality == "SR" and s.series_description.strip().upper() != OUR_SR_SERIES_DESCRIPTION
    ]
