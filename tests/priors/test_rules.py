"""Relevance decided on the source's answers: same patient and issuer, never the current study, earlier
and within the years, the rule's modalities, body part, series pattern and views, newest first."""

from __future__ import annotations

import datetime as dt

import pytest

from radassist.config.priors import PriorRule, PriorsSettings
from radassist.priors import fetch_priors
from radassist.priors.answers import InstanceAnswer, SeriesAnswer, StudyAnswer
from radassist.priors.results import CurrentStudy
from radassist.priors.rules import (
    chosen_instances,
    relevant_series,
    relevant_studies,
    report_series,
    study_query,
)

CURRENT = CurrentStudy(
    study_instance_uid="1.2.9", patient_id="PID-1", issuer_of_patient_id="HOSP", study_date=dt.date(2024, 3, 14),
    study_time=dt.time(9, 30), modalities=("DX",), body_part="CHEST",
)


def study(uid: str, day: dt.date | None, *, patient_id: str = "PID-1", issuer: str = "HOSP",
          modalities: tuple[str, ...] = ("DX",), time: dt.time | None = dt.time(10, 0),
          description: str = "XR CHEST") -> StudyAnswer:
    return StudyAnswer(study_instance_uid=uid, patient_id=patient_id, issuer_of_patient_id=issuer, study_date=day,
                       study_time=time, study_description=description, accession_number="", modalities=modalities)


def test_the_query_spans_the_rules_years_up_to_the_study() -> None:
    query = study_query(CURRENT, PriorRule(within_years=3))
    assert (query.date_from, query.date_to) == (dt.date(2021, 3, 14), dt.date(2024, 3, 14))
    assert query.date_range == "20210314-20240314"
    leap = CurrentStudy(study_instance_uid="1", patient_id="P", study_date=dt.date(2024, 2, 29))
    assert study_query(leap, PriorRule(within_years=1)).date_from == dt.date(2023, 2, 28)
    undated = CurrentStudy(study_instance_uid="1", patient_id="P")
    assert study_query(undated, PriorRule(), today=dt.date(2030, 1, 1)).date_to == dt.date(2030, 1, 1)


def test_only_earlier_studies_of_the_same_patient_are_kept_newest_first() -> None:
    query = study_query(CURRENT, PriorRule(within_years=5))
    answers = [
        study("1.2.9", dt.date(2024, 3, 14)),  # the current study itself
        study("1.2.1", dt.date(2021, 1, 1)),
        study("1.2.2", dt.date(2023, 6, 1)),
        study("1.2.2", dt.date(2023, 6, 1)),  # answered twice
        study("1.2.3", dt.date(2023, 7, 1), patient_id="PID-10"),  # a wildcard-like looser match
        study("1.2.4", dt.date(2023, 7, 2), issuer="OTHER"),
        study("1.2.5", dt.date(2023, 7, 3), issuer=""),  # issuer unknown there: same ID counts
        study("1.2.6", dt.date(2018, 1, 1)),  # too old
        study("1.2.7", dt.date(2024, 4, 1)),  # later than the current study
        study("1.2.8", None),  # undated
        study("1.2.10", dt.date(2023, 8, 1), modalities=("CT",)),
        study("1.2.11", dt.date(2024, 3, 14), time=dt.time(8, 0)),  # same day, earlier
        study("1.2.12", dt.date(2024, 3, 14), time=dt.time(11, 0)),  # same day, later
        study("1.2.13", dt.date(2023, 9, 1), modalities=()),  # modalities not answered: series decide
    ]
    kept = [a.study_instance_uid for a in relevant_studies(CURRENT, PriorRule(), query, answers)]
    assert kept == ["1.2.11", "1.2.13", "1.2.5", "1.2.2", "1.2.1"]


def test_the_rules_modalities_replace_the_current_studys() -> None:
    query = study_query(CURRENT, PriorRule())
    answers = [study("1.2.1", dt.date(2023, 1, 1), modalities=("CR",)), study("1.2.2", dt.date(2023, 1, 2))]
    kept = relevant_studies(CURRENT, PriorRule(modalities=("cr", "dx")), query, answers)
    assert [a.study_instance_uid for a in kept] == ["1.2.2", "1.2.1"]
    assert [a.study_instance_uid for a in relevant_studies(CURRENT, PriorRule(), query, answers)] == ["1.2.2"]


def series(uid: str, modality: str = "DX", body_part: str = "CHEST", description: str = "",
           number: int | None = 1) -> SeriesAnswer:
    return SeriesAnswer(series_instance_uid=uid, modality=modality, body_part=body_part,
                        series_description=description, series_number=number)


def test_series_match_modality_and_body_part_and_skip_non_images() -> None:
    prior = study("1.2.1", dt.date(2023, 1, 1), description="XR ABDOMEN AND CHEST")
    answers = [
        series("s4", number=4), series("s1", number=1), series("sr", modality="SR"),
        series("abd", body_part="ABDOMEN", number=2), series("ct", modality="CT"),
        series("nobody", body_part="", description="chest pa", number=5), series("none", body_part="", number=None),
    ]
    kept = [s.series_instance_uid for s in relevant_series(CURRENT, PriorRule(), prior, answers)]
    # "none" has no body part but the study description names the chest.
    assert kept == ["s1", "s4", "nobody", "none"]
    words = relevant_series(CURRENT, PriorRule(body_parts=("abdomen",)), prior, answers)
    assert [s.series_instance_uid for s in words] == ["s1", "abd", "s4", "nobody", "none"]  # the study names it
    pattern = relevant_series(CURRENT, PriorRule(series_description_pattern="^chest"), prior, answers)
    assert [s.series_instance_uid for s in pattern] == ["nobody"]


def test_views_choose_the_frontal_image_unless_no_image_names_a_view() -> None:
    rule = PriorRule(views=("pa", "ap"))
    named = [InstanceAnswer("i2", view_position="LL", instance_number=2), InstanceAnswer("i1", view_position="PA",
                                                                                          instance_number=1)]
    assert [i.sop_instance_uid for i in chosen_instances(rule, named)] == ["i1"]
    unnamed = [InstanceAnswer("i2", instance_number=2), InstanceAnswer("i1", instance_number=1), InstanceAnswer("")]
    assert [i.sop_instance_uid for i in chosen_instances(rule, unnamed)] == ["i1", "i2"]
    assert [i.sop_instance_uid for i in chosen_instances(PriorRule(), named)] == ["i1", "i2"]


def test_report_series_leave_our_draft_series_out() -> None:
    answers = [series("r", modality="SR", description="Report"), series("ours", modality="SR",
                                                                        description="AI DRAFT - NOT VERIFIED"),
               series("img")]
    assert [s.series_instance_uid for s in report_series(answers)] == ["r"]


def test_each_profile_gets_its_rule_else_the_catch_all_else_the_default() -> None:
    cxr, catch_all = PriorRule(profile="cxr", views=("PA",)), PriorRule(most_recent=3)
    assert PriorsSettings(rules=(cxr, catch_all)).rule_for("cxr") is cxr
    assert PriorsSettings(rules=(cxr, catch_all)).rule_for("ct_head") is catch_all
    assert PriorsSettings(rules=(cxr,)).rule_for("ct_head") == PriorRule()
    with pytest.raises(ValueError, match="one prior rule"):
        PriorsSettings(rules=(cxr, cxr))


@pytest.mark.parametrize(
    "current, rule, sources, code",
    [
        (CurrentStudy(study_instance_uid="1", patient_id=""), PriorRule(), ["x"], "priors.no_patient_id"),
        (CURRENT, PriorRule(most_recent=0), ["x"], "priors.disabled"),
        (CURRENT, PriorRule(), [], "priors.no_source"),
    ],
)
def test_nothing_is_searched_when_it_cannot_be(current: CurrentStudy, rule: PriorRule, sources: list[str],
                                              code: str) -> None:
    result = fetch_priors(current, sources=sources, rule=rule, time_limit_seconds=1,  # type: ignore[arg-type]
                          our_ae_title="RADASSIST")
    assert not result.available and result.reason_code == code and result.reason
