"""The draft SR: built with highdicom, checked by dciodvfy (zero errors) and rendered by dsrdump."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import uuid
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from radassist.sr import build_draft_sr, sr_uids_for_job
from radassist.sr.uids import device_observer_uid
from tests.dicom_factories import SENTINEL_NAME, SENTINEL_VALUES, make_ct_study, write_study

DCIODVFY = "/usr/bin/dciodvfy"
DSRDUMP = "/usr/bin/dsrdump"

FINDINGS = "The lungs are clear.\n\nNo pleural effusion or pneumothorax.\nHeart size is normal (CTR < 0.5) & mediastinum unremarkable."
IMPRESSION = "No acute cardiopulmonary abnormality."
NOW = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.UTC)


def _build(sources: list[pydicom.Dataset], **kwargs: object) -> pydicom.Dataset:
    series_uid, sop_uid = sr_uids_for_job(uuid.UUID("12345678-1234-5678-1234-567812345678"))
    args: dict[str, object] = {
        "findings": FINDINGS,
        "impression": IMPRESSION,
        "series_instance_uid": series_uid,
        "sop_instance_uid": sop_uid,
        "model_name": "google/medgemma-4b-it",
        "model_revision": "0123abcd",
        "software_version": "0.1.0",
        "indication": "Cough and fever for 3 days.",
        "now": NOW,
    }
    args.update(kwargs)
    return build_draft_sr(sources, **args)  # type: ignore[arg-type]


def _dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    proc = subprocess.run([DCIODVFY, str(path)], check=False, capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    return [l for l in lines if l.startswith("Error")], [l for l in lines if l.startswith("Warning")]


def _text_items(sr: pydicom.Dataset, heading: str) -> list[str]:
    for item in sr.ContentSequence:
        if item.ValueType == "CONTAINER" and item.ConceptNameCodeSequence[0].CodeMeaning == heading:
            return [child.TextValue for child in item.ContentSequence]
    raise AssertionError(f"no {heading} container")


@pytest.fixture
def rg1(testdata: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(testdata / "pydicom-data" / "RG1_J2KR.dcm", stop_before_pixels=True)]


@pytest.fixture
def ct_study(tmp_path: Path) -> list[pydicom.Dataset]:
    paths = write_study(make_ct_study(series_count=2, instances_per_series=3), tmp_path / "ct")
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]


def test_uids_are_deterministic_per_job() -> None:
    job = uuid.uuid4()
    series, sop = sr_uids_for_job(job)
    assert (series, sop) == sr_uids_for_job(job)
    assert series != sop
    assert sop == str(hd.UID.from_uuid(str(job)))
    assert series.startswith("2.25.") and len(series) <= 64
    assert sr_uids_for_job(uuid.uuid4()) != (series, sop)
    with pytest.raises(TypeError, match="job_id"):
        sr_uids_for_job(str(job))  # type: ignore[arg-type]


def test_device_observer_uid_is_stable_per_model_version() -> None:
    assert device_observer_uid("m", "1") == device_observer_uid("m", "1")
    assert device_observer_uid("m", "1") != device_observer_uid("m", "2")
    assert device_observer_uid("m", None) != device_observer_uid("n", None)


@pytest.mark.parametrize("sr_class", ["enhanced", "comprehensive"])
def test_sr_from_rg1_passes_dciodvfy_and_renders(
    rg1: list[pydicom.Dataset], tmp_path: Path, sr_class: str
) -> None:
    sr = _build(rg1, sr_class=sr_class)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)

    errors, _warnings = _dciodvfy(path)
    assert errors == []

    dump = subprocess.run(
        [DSRDUMP, "+Pl", "+U8", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert dump.returncode == 0, dump.stderr
    assert IMPRESSION in dump.stdout
    assert "AI-GENERATED DRAFT" in dump.stdout
    assert "NOT VERIFIED BY A RADIOLOGIST" in dump.stdout
    expected_class = {"enhanced": "Enhanced SR", "comprehensive": "Comprehensive SR"}[sr_class]
    assert expected_class in dump.stdout


def test_sr_header_marks_an_unverified_draft_of_the_source_study(rg1: list[pydicom.Dataset]) -> None:
    source = rg1[0]
    sr = _build(rg1)
    assert sr.SOPClassUID == pydicom.uid.EnhancedSRStorage
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert (sr.SeriesInstanceUID, sr.SOPInstanceUID) == sr_uids_for_job(
        uuid.UUID("12345678-1234-5678-1234-567812345678")
    )
    assert sr.PatientID == source.PatientID
    assert sr.PatientName == source.PatientName
    assert sr.AccessionNumber == source.AccessionNumber
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "PARTIAL",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    assert sr.SeriesDescription.startswith("AI DRAFT")
    assert sr.Modality == "SR"
    assert sr.Manufacturer == "RadAssist"
    assert sr.ManufacturerModelName == "google/medgemma-4b-it"
    assert sr.SoftwareVersions == "0.1.0"
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    assert sr.InstitutionName == source.InstitutionName
    assert "VerifyingObserverSequence" not in sr
    # The source declares -0400: the SR's dates are in that zone, and say so.
    assert sr.TimezoneOffsetFromUTC == "-0400"
    assert (str(sr.ContentDate), str(sr.ContentTime)) == ("20240501", "083015")


def test_sr_content_follows_tid_2000(rg1: list[pydicom.Dataset]) -> None:
    sr = _build(rg1)
    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    concept_values = [item.ConceptNameCodeSequence[0].CodeValue for item in sr.ContentSequence]
    assert concept_values[0] == "121049"  # language of content
    assert sr.ContentSequence[0].ConceptCodeSequence[0].CodeValue == "en-US"
    assert "121005" in concept_values  # observer type
    observer_type = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121005")
    assert observer_type.ConceptCodeSequence[0].CodeValue == "121007"  # Device
    device_uid = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121012")
    assert device_uid.UID == device_observer_uid("google/medgemma-4b-it", "0123abcd")
    assert concept_values[-3:] == ["55752-0", "59776-5", "19005-8"]

    assert _text_items(sr, "Clinical Information") == ["Cough and fever for 3 days."]
    findings = _text_items(sr, "Findings")
    assert (
        findings[0]
        == "AI-GENERATED DRAFT \u2014 NOT VERIFIED BY A RADIOLOGIST. Preliminary, for review only."
    )
    assert findings[1:] == [
        "The lungs are clear.",
        "No pleural effusion or pneumothorax.",
        "Heart size is normal (CTR < 0.5) & mediastinum unremarkable.",
    ]
    findings_container = next(
        i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "59776-5"
    )
    assert {c.ConceptNameCodeSequence[0].CodeValue for c in findings_container.ContentSequence} == {"121071"}
    impressions = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "19005-8")
    assert [c.ConceptNameCodeSequence[0].CodeValue for c in impressions.ContentSequence] == ["121073"]
    assert _text_items(sr, "Impressions") == [IMPRESSION]


def test_sr_without_indication_has_no_clinical_information(rg1: list[pydicom.Dataset]) -> None:
    sr = _build(rg1, indication=None)
    headings = [
        i.ConceptNameCodeSequence[0].CodeValue for i in sr.ContentSequence if i.ValueType == "CONTAINER"
    ]
    assert headings == ["59776-5", "19005-8"]


def test_sr_from_generated_ct_study(ct_study: list[pydicom.Dataset], tmp_path: Path) -> None:
    sr = _build(ct_study, model_name="x" * 100)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    errors, _ = _dciodvfy(path)
    assert errors == []

    read = pydicom.dcmread(path)
    assert read.PatientName == SENTINEL_NAME
    assert read.StudyInstanceUID == ct_study[0].StudyInstanceUID
    assert len(read.ManufacturerModelName) == 64
    evidence = read.CurrentRequestedProcedureEvidenceSequence
    assert len(evidence) == 1 and evidence[0].StudyInstanceUID == ct_study[0].StudyInstanceUID
    listed = {
        (series.SeriesInstanceUID, ref.ReferencedSOPInstanceUID, ref.ReferencedSOPClassUID)
        for series in evidence[0].ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert listed == {(ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID) for ds in ct_study}

    dump = subprocess.run(
        [DSRDUMP, "+Pl", "+U8", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert IMPRESSION in dump.stdout and "AI-GENERATED DRAFT" in dump.stdout


def test_rebuilding_for_a_retry_gives_the_same_object(ct_study: list[pydicom.Dataset]) -> None:
    first, second = _build(ct_study), _build(list(reversed(ct_study)))
    assert (first.SeriesInstanceUID, first.SOPInstanceUID) == (
        second.SeriesInstanceUID,
        second.SOPInstanceUID,
    )
    assert first.ContentSequence == second.ContentSequence


def test_bad_input_is_rejected_naming_the_argument(
    rg1: list[pydicom.Dataset], ct_study: list[pydicom.Dataset]
) -> None:
    with pytest.raises(ValueError, match='"sources"'):
        _build([])
    other = make_ct_study(series_count=1, instances_per_series=1)
    with pytest.raises(ValueError, match='"sources"') as excinfo:
        _build([*ct_study, *other])
    assert not any(value in str(excinfo.value) for value in SENTINEL_VALUES)
    with pytest.raises(ValueError, match='"findings" and "impression"'):
        _build(rg1, findings=" \n", impression="")
    with pytest.raises(ValueError, match='"sop_instance_uid"'):
        _build(rg1, sop_instance_uid="not-a-uid")
    with pytest.raises(ValueError, match='"sr_class"'):
        _build(rg1, sr_class="basic")


def test_building_logs_no_patient_data(
    ct_study: list[pydicom.Dataset], caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    for ds in ct_study:
        ds.PatientName = "SENTINEL"  # no caret: highdicom would warn, quoting the name
    with caplog.at_level(logging.DEBUG):
        _build(ct_study)
    text = "\n".join(record.getMessage() for record in caplog.records)
    text += "\n".join(str(warning.message) for warning in recwarn)
    assert not any(value in text for value in SENTINEL_VALUES)
    assert FINDINGS.splitlines()[0] not in text


def test_unknown_sop_class_first_does_not_break_the_build(ct_study: list[pydicom.Dataset]) -> None:
    private = pydicom.Dataset(ct_study[0])
    private.SOPClassUID = "1.2.3.4.5.6.7"  # a vendor-private storage class
    private.SOPInstanceUID = pydicom.uid.generate_uid()
    sr = _build([private, *ct_study])
    assert sr.PatientName == SENTINEL_NAME
    referenced = {
        ref.ReferencedSOPInstanceUID
        for series in sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert private.SOPInstanceUID in referenced
