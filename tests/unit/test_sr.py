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
from radassist.sr.document import CodedLabel, RequestedProcedure
from radassist.sr.uids import device_observer_uid
from tests.dicom_factories import (
    SENTINEL_ACCESSION,
    SENTINEL_NAME,
    SENTINEL_VALUES,
    make_ct_study,
    write_study,
)

DCIODVFY = "/usr/bin/dciodvfy"
DSRDUMP = "/usr/bin/dsrdump"
DSR2HTML = "/usr/bin/dsr2html"

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
    return [x for x in lines if x.startswith("Error")], [x for x in lines if x.startswith("Warning")]


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


@pytest.mark.parametrize("sr_class", ["enhanced", "comprehensive", "basic"])
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
    expected_class = {"enhanced": "Enhanced SR", "comprehensive": "Comprehensive SR", "basic": "Basic Text SR"}[
        sr_class
    ]
    assert expected_class in dump.stdout
    html = subprocess.run([DSR2HTML, str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert html.returncode == 0, html.stderr
    assert "<html" in html.stdout.lower() and IMPRESSION in html.stdout


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
        _build(rg1, sr_class="fancy")
    with pytest.raises(ValueError, match='"labels"'):
        _build(rg1, labels=[("only-two", "SCT")])
    with pytest.raises(TypeError, match='"requested_procedure"'):
        _build(rg1, requested_procedure={"accession_number": "X"})
    with pytest.raises(ValueError, match='"predecessors"'):
        _build(rg1, predecessors=[pydicom.Dataset()])


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


def _full(sources: list[pydicom.Dataset], sr_class: str = "enhanced", **kwargs: object) -> pydicom.Dataset:
    """An SR with every optional part: key images, coded labels, the order, a predecessor."""
    series_uid, sop_uid = sr_uids_for_job(uuid.UUID("12345678-1234-5678-1234-567812345678"), sr_class)
    predecessor = pydicom.Dataset()
    predecessor.StudyInstanceUID = sources[0].StudyInstanceUID
    predecessor.SeriesInstanceUID = series_uid
    predecessor.SOPInstanceUID = sr_uids_for_job(uuid.UUID(int=7), sr_class)[1]
    predecessor.SOPClassUID = pydicom.uid.EnhancedSRStorage
    args: dict[str, object] = {
        "series_instance_uid": series_uid,
        "sop_instance_uid": sop_uid,
        "sr_class": sr_class,
        "key_image_uids": [sources[1].SOPInstanceUID, "1.2.3.999", sources[0].SOPInstanceUID],
        "labels": [("36118008", "SCT", "Pneumothorax"), CodedLabel("60046008", "SCT", "Pleural effusion")],
        "requested_procedure": RequestedProcedure(
            placer_order_number="PLACER-1",
            filler_order_number="FILLER-1",
            description="CT chest without contrast",
            code=CodedLabel("24627-2", "LN", "CT Chest"),
            reason="Cough and fever for 3 days.",
        ),
        "predecessors": [predecessor],
    }
    args.update(kwargs)
    return _build(sources, **args)


@pytest.mark.parametrize("sr_class", ["enhanced", "comprehensive", "basic"])
def test_full_sr_passes_dciodvfy_with_zero_errors(
    ct_study: list[pydicom.Dataset], tmp_path: Path, sr_class: str
) -> None:
    sr = _full(ct_study, sr_class)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    errors, _ = _dciodvfy(path)
    assert errors == []
    expected = {
        "enhanced": pydicom.uid.EnhancedSRStorage,
        "comprehensive": pydicom.uid.ComprehensiveSRStorage,
        "basic": pydicom.uid.BasicTextSRStorage,
    }[sr_class]
    assert sr.SOPClassUID == expected == sr.file_meta.MediaStorageSOPClassUID
    dump = subprocess.run([DSRDUMP, "+Pl", "+U8", str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert "Pneumothorax" in dump.stdout and "IMAGE" in dump.stdout


def test_findings_hold_codes_and_key_images_beside_the_text(ct_study: list[pydicom.Dataset]) -> None:
    sr = _full(ct_study)
    findings = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "59776-5")
    kinds = [(c.ValueType, c.RelationshipType) for c in findings.ContentSequence]
    assert kinds[0] == ("TEXT", "CONTAINS") and findings.ContentSequence[0].TextValue.startswith("AI-GENERATED DRAFT")
    codes_ = [c.ConceptCodeSequence[0] for c in findings.ContentSequence if c.ValueType == "CODE"]
    assert [(c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning) for c in codes_] == [
        ("36118008", "SCT", "Pneumothorax"),
        ("60046008", "SCT", "Pleural effusion"),
    ]
    images = [c for c in findings.ContentSequence if c.ValueType == "IMAGE"]
    # The unknown UID is left out; order as given; the SOP classes are the sources' own.
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images] == [
        ct_study[1].SOPInstanceUID,
        ct_study[0].SOPInstanceUID,
    ]
    assert {i.ReferencedSOPSequence[0].ReferencedSOPClassUID for i in images} == {ct_study[0].SOPClassUID}
    assert images[0].ConceptNameCodeSequence[0].CodeValue == "121080"


def test_header_names_the_request_the_equipment_and_the_predecessor(ct_study: list[pydicom.Dataset]) -> None:
    sr = _full(ct_study)
    (request,) = sr.ReferencedRequestSequence
    assert request.StudyInstanceUID == ct_study[0].StudyInstanceUID
    assert request.AccessionNumber == SENTINEL_ACCESSION
    assert (request.PlacerOrderNumberImagingServiceRequest, request.FillerOrderNumberImagingServiceRequest) == (
        "PLACER-1",
        "FILLER-1",
    )
    assert request.RequestedProcedureDescription == "CT chest without contrast"
    assert request.RequestedProcedureCodeSequence[0].CodeValue == "24627-2"
    assert request.ReasonForTheRequestedProcedure == "Cough and fever for 3 days."

    ours = [e for e in sr.ContributingEquipmentSequence if e.Manufacturer == "RadAssist"]
    assert len(ours) == 1
    assert ours[0].ManufacturerModelName == "google/medgemma-4b-it"
    assert list(ours[0].SoftwareVersions) == ["RadAssist 0.1.0", "model 0123abcd"]
    assert ours[0].PurposeOfReferenceCodeSequence[0].CodeValue == "109102"

    (predecessor,) = sr.PredecessorDocumentsSequence
    assert predecessor.StudyInstanceUID == ct_study[0].StudyInstanceUID
    assert predecessor.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
        sr_uids_for_job(uuid.UUID(int=7))[1]
    )


def test_without_order_the_request_comes_from_the_source_accession(rg1: list[pydicom.Dataset]) -> None:
    sr = _build(rg1)
    (request,) = sr.ReferencedRequestSequence
    assert request.AccessionNumber == rg1[0].AccessionNumber
    assert "PredecessorDocumentsSequence" not in sr
    no_accession = pydicom.Dataset(rg1[0])
    no_accession.AccessionNumber = ""
    assert "ReferencedRequestSequence" not in _build([no_accession])


def test_each_sr_class_has_its_own_stable_sop_instance_uid() -> None:
    job = uuid.uuid4()
    uids = {cls: sr_uids_for_job(job, cls) for cls in ("enhanced", "comprehensive", "basic")}
    assert len({sop for _, sop in uids.values()}) == 3
    assert len({series for series, _ in uids.values()}) == 1
    assert uids == {cls: sr_uids_for_job(job, cls) for cls in ("enhanced", "comprehensive", "basic")}
    assert uids["enhanced"][1] == str(hd.UID.from_uuid(str(job)))
    with pytest.raises(ValueError, match="sr_class"):
        sr_uids_for_job(job, "fancy")


def test_multi_valued_header_values_become_one_text(ct_study: list[pydicom.Dataset], tmp_path: Path) -> None:
    """A value that should be single but arrived with a backslash is written joined, never as a list."""
    source = ct_study[0]
    source.InstitutionName = ["North Hospital", "Radiology"]
    source.StudyDescription = ["CT CHEST", "WITH CONTRAST"]
    source.AccessionNumber = ["A1", "B2"]
    sr = _build(ct_study)
    assert sr.InstitutionName == "North Hospital / Radiology"
    request = sr.ReferencedRequestSequence[0]
    assert request.RequestedProcedureDescription == "CT CHEST / WITH CONTRAST"
    assert request.AccessionNumber == "A1 / B2"
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert _dciodvfy(path)[0] == []
