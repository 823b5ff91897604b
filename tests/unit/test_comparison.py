"""The comparison with the patient's priors, as the prompt, the model's request, the SR and the ORU say it."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from pathlib import Path

import hl7
import pydicom
import pytest
from PIL import Image
from pydantic import ValidationError

from radassist.config import Hl7Settings, PromptProfileSettings
from radassist.hl7.oru import build_oru
from radassist.imaging.context import ClinicalContext
from radassist.imaging.prepare import PreparedStudy
from radassist.models.drafting import DraftInput
from radassist.models.prompts import build_prompt
from radassist.priors.comparison import ComparedStudy, Comparison, quoted_report
from radassist.sr import build_draft_sr, sr_uids_for_job
from tests.priors.factories import make_cxr_study

DCIODVFY = "/usr/bin/dciodvfy"
NOW = dt.datetime(2024, 3, 14, 12, 0, tzinfo=dt.UTC)
REPORT = "Findings: Lungs clear.\n\nImpression: No acute disease (prior A)."
PRIOR = ComparedStudy("1.2.826.0.1.3680043.8.498.5001", dt.date(2023, 1, 10), "XR CHEST 2 VIEWS", ("DX",),
                      report=REPORT, report_origin="sr")
OLDER = ComparedStudy("1.2.826.0.1.3680043.8.498.5002", dt.date(2021, 5, 5), "", ("CR",))
FOUND = Comparison((PRIOR, OLDER), None)
DOWN = Comparison((), "priors.source_down", "The prior source could not be reached.")
CONTEXT = ClinicalContext(modality="DX", body_part="chest", age="64 years", sex="female")


def test_the_comparison_names_each_prior_or_why_there_is_none() -> None:
    assert FOUND.lines() == ["Comparison: XR CHEST 2 VIEWS (DX) of 2023-01-10.", "Comparison: Imaging study (CR) of 2021-05-05."]
    assert DOWN.lines() == ["Comparison: none available. The prior source could not be reached."]
    assert FOUND.newest is PRIOR and FOUND.available and not DOWN.available
    assert "REPORT" not in repr(PRIOR) and "Lungs" not in repr(PRIOR)  # report text stays out of logs


def test_a_long_report_is_cut_at_a_word() -> None:
    quoted = quoted_report("word " * 2000, limit=100)
    assert len(quoted) <= 104 and quoted.endswith(" ...") and not quoted.endswith("wor ...")
    assert quoted_report("  A   line\n\n\nB  ") == "A line\nB"


def test_the_prompt_gets_the_priors_date_description_and_report() -> None:
    prompt = build_prompt(CONTEXT, 2, comparison=FOUND)
    assert "Prior study for comparison: XR CHEST 2 VIEWS (DX) of 2023-01-10." in prompt
    assert "Its report:\nFindings: Lungs clear.\nImpression: No acute disease (prior A)." in prompt
    assert "Prior study for comparison: Imaging study (CR) of 2021-05-05.\nIts report is not available." in prompt
    assert "Compare with the prior study where relevant." in prompt
    assert prompt.index("Prior study") < prompt.index("The 2 images above are from this study") < prompt.index("Findings: the observations")


def test_the_prompt_says_when_no_prior_is_available_and_nothing_when_none_was_searched() -> None:
    down = build_prompt(CONTEXT, 1, comparison=DOWN)
    assert "Prior studies: none available for comparison; do not compare with earlier studies." in down
    never = build_prompt(CONTEXT, 1)
    assert "prior" not in never.lower() and never == build_prompt(CONTEXT, 1, comparison=None)


def _study(n: int, labels: tuple[str, ...]) -> PreparedStudy:
    images = tuple(Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(n))
    return PreparedStudy(images=images, context=CONTEXT, source_sop_instance_uids=(), labels=labels)


@pytest.mark.parametrize("order", [("current", "prior"), ("prior", "current")])
def test_prior_pictures_come_where_the_profile_names_them(order: tuple[str, ...]) -> None:
    profile = PromptProfileSettings(name="maira", image_order=order)  # type: ignore[arg-type]
    current = _study(2, ("PA", "lateral"))
    prior = _study(1, ("prior PA (2023-01-10)",))
    item = DraftInput(current, profile, comparison=FOUND, prior=prior)
    request = item.request(item.prompt())
    expected = {"current": ["PA", "lateral"], "prior": ["prior PA (2023-01-10)"]}
    assert list(request.labels) == [label for name in order for label in expected[name]]
    assert len(request.images) == 3
    assert request.images[0] is (current.images[0] if order[0] == "current" else prior.images[0])
    if order[0] == "current":
        assert "the first 2 images are from this study, in reading order; the last image is from the prior study " \
               "(XR CHEST 2 VIEWS (DX) of 2023-01-10)" in request.prompt
    else:
        assert "the first image is from the prior study (XR CHEST 2 VIEWS (DX) of 2023-01-10); the last 2 images " \
               "are from this study" in request.prompt


def test_a_profile_without_prior_pictures_shows_the_current_study_only() -> None:
    item = DraftInput(_study(2, ("PA", "lateral")), PromptProfileSettings(name="cxr"), comparison=FOUND,
                      prior=_study(1, ("prior PA",)))
    request = item.request(item.prompt())
    assert list(request.labels) == ["PA", "lateral"] and "The 2 images above are from this study" in request.prompt


def test_image_order_must_name_the_current_study_once() -> None:
    for bad in (["prior"], ["current", "current"], ["current", "prior", "prior"]):
        with pytest.raises(ValidationError):
            PromptProfileSettings(name="x", image_order=bad)  # type: ignore[arg-type]


def _headers(datasets: list[pydicom.Dataset]) -> list[pydicom.Dataset]:
    out = []
    for ds in datasets:
        header = pydicom.Dataset()
        header.update({tag: element for tag, element in ds.items() if element.keyword != "PixelData"})
        header.file_meta = ds.file_meta
        out.append(header)
    return out


def _sr(comparison: Comparison, prior_headers: list[pydicom.Dataset], sr_class: str = "enhanced",
        current: list[pydicom.Dataset] | None = None) -> pydicom.Dataset:
    series_uid, sop_uid = sr_uids_for_job(uuid.UUID(int=23), sr_class)
    return build_draft_sr(
        current or _headers(make_cxr_study(dt.datetime(2024, 3, 14, 9, 30))), findings="Lungs clear.",
        impression="No change.", series_instance_uid=series_uid, sop_instance_uid=sop_uid, model_name="tiny",
        model_revision=None, software_version="0.1.0", now=NOW, sr_class=sr_class,  # type: ignore[arg-type]
        comparison=comparison, comparison_sources=prior_headers,
    )


def _section(sr: pydicom.Dataset) -> pydicom.Dataset:
    return next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "55114-3")


@pytest.mark.parametrize("sr_class", ["enhanced", "comprehensive", "basic"])
def test_the_sr_names_the_comparison_study_and_references_its_images(sr_class: str, tmp_path: Path) -> None:
    prior = _headers(make_cxr_study(dt.datetime(2023, 1, 10, 14, 0)))
    comparison = Comparison((ComparedStudy(str(prior[0].StudyInstanceUID), dt.date(2023, 1, 10), "XR CHEST 2 VIEWS",
                                           ("DX",)),), None)
    sr = _sr(comparison, prior, sr_class)
    section = _section(sr)
    assert [(i.ValueType, i.ConceptNameCodeSequence[0].CodeValue) for i in section.ContentSequence] == [
        ("TEXT", "121065"), ("UIDREF", "110180")]
    assert section.ContentSequence[0].TextValue == "Comparison: XR CHEST 2 VIEWS (DX) of 2023-01-10."
    assert section.ContentSequence[1].UID == prior[0].StudyInstanceUID
    names = [i.ConceptNameCodeSequence[0].CodeValue for i in sr.ContentSequence if i.ValueType == "CONTAINER"]
    assert names.index("55114-3") < names.index("59776-5")  # comparison before the findings
    other = sr.PertinentOtherEvidenceSequence
    assert [item.StudyInstanceUID for item in other] == [prior[0].StudyInstanceUID]
    referenced = {ref.ReferencedSOPInstanceUID for item in other for s in item.ReferencedSeriesSequence
                  for ref in s.ReferencedSOPSequence}
    assert referenced == {str(ds.SOPInstanceUID) for ds in prior}
    current = {item.StudyInstanceUID for item in sr.CurrentRequestedProcedureEvidenceSequence}
    assert current == {sr.StudyInstanceUID} and sr.StudyInstanceUID != prior[0].StudyInstanceUID
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    check = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    assert [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")] == []


def test_the_sr_says_why_no_prior_was_compared(tmp_path: Path) -> None:
    sr = _sr(DOWN, [])
    texts = [i.TextValue for i in _section(sr).ContentSequence]
    assert texts == ["Comparison: none available. The prior source could not be reached."]
    assert "PertinentOtherEvidenceSequence" not in sr
    other_patient = _headers(make_cxr_study(dt.datetime(2023, 1, 10), patient_id="ANOTHER"))
    unrelated = _sr(DOWN, other_patient)  # headers of a study not compared with are never evidence
    assert "PertinentOtherEvidenceSequence" not in unrelated


def test_without_a_search_the_sr_has_no_comparison() -> None:
    sr = _sr(None, [])  # type: ignore[arg-type]
    assert all(i.ConceptNameCodeSequence[0].CodeValue != "55114-3" for i in sr.ContentSequence)


def _oru(comparison: Comparison | None, value_type: str = "TX") -> hl7.Message:
    source = make_cxr_study(dt.datetime(2024, 3, 14, 9, 30))[0]
    er7 = build_oru(source, findings="Lungs clear.", impression="No change.", control_id="abc123",
                    study_instance_uid=str(source.StudyInstanceUID), now=NOW, comparison=comparison,
                    hl7=Hl7Settings(obx_value_type=value_type))  # type: ignore[arg-type]
    return hl7.parse(er7)


@pytest.mark.parametrize("value_type", ["TX", "FT"])
def test_the_oru_carries_the_comparison_before_the_findings(value_type: str) -> None:
    message = _oru(FOUND, value_type)
    rows = [(str(obx[3][0][0]), str(obx[5])) for obx in message.segments("OBX")]
    codes = [code for code, _ in rows]
    assert codes[0] == "59776-5" and codes[1] == "55114-3" and codes.index("55114-3") < codes.index("19005-8")
    comparison = "\n".join(value for code, value in rows if code == "55114-3").replace("\\.br\\", "\n")
    assert comparison.splitlines() == FOUND.lines()
    assert [str(obx[1]) for obx in message.segments("OBX")] == [str(n) for n in range(1, len(rows) + 1)]


def test_the_oru_says_why_no_prior_was_compared_and_nothing_without_a_search() -> None:
    down = _oru(DOWN)
    assert [str(obx[5]) for obx in down.segments("OBX") if str(obx[3][0][0]) == "55114-3"] == DOWN.lines()
    assert all(str(obx[3][0][0]) != "55114-3" for obx in _oru(None).segments("OBX"))
