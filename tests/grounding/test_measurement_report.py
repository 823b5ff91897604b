"""The TID 1500 measurement report of grounded findings: dciodvfy with zero errors, the structure
OHIF's SR extension reads, the draft flags and notice, deterministic UIDs, clean errors."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import subprocess
import uuid
from pathlib import Path

import pydicom
import pytest

from radassist.grounding import CodedLabel, MappedFinding, SourceBox
from radassist.sr import sr_uids_for_job
from radassist.sr.measurement_report import build_measurement_report, grounding_sr_uids, tracking_uid
from radassist.sr.uids import device_observer_uid
from tests.dicom_factories import SENTINEL_NAME, SENTINEL_VALUES, headers, make_ct_study
from tests.grounding.marked import MULTIFRAME_SC, marked_multiframe

DCIODVFY = "/usr/bin/dciodvfy"
DSRDUMP = "/usr/bin/dsrdump"
JOB = uuid.UUID("12345678-1234-5678-1234-567812345678")
NOW = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.UTC)


def _dciodvfy(path: Path) -> list[str]:
    proc = subprocess.run([DCIODVFY, str(path)], check=False, capture_output=True, text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


def _build(sources: list[pydicom.Dataset], findings: list[MappedFinding], **kwargs: object) -> pydicom.Dataset:
    series_uid, sop_uid = grounding_sr_uids(JOB)
    args: dict[str, object] = {
        "series_instance_uid": series_uid,
        "sop_instance_uid": sop_uid,
        "model_name": "Qwen/Qwen2.5-VL-7B-Instruct",
        "model_revision": "cc594898",
        "software_version": "0.1.0",
        "now": NOW,
    }
    args.update(kwargs)
    return build_measurement_report(sources, findings, **args)  # type: ignore[arg-type]


@pytest.fixture
def ct() -> list[pydicom.Dataset]:
    return headers(make_ct_study(series_count=1, instances_per_series=3, rows=64, columns=80))


def _findings(ct: list[pydicom.Dataset]) -> list[MappedFinding]:
    second, third = str(ct[1].SOPInstanceUID), str(ct[2].SOPInstanceUID)
    return [
        MappedFinding(
            "Patchy opacity in the right lower lobe.",
            (SourceBox(second, 1, 10.5, 12, 30, 40.25), SourceBox(second, 1, 50, 5, 60, 15)),
            CodedLabel("233604007", "SCT", "Pneumonia"),
        ),
        MappedFinding("No pneumothorax."),
        MappedFinding("Small nodule.", (SourceBox(third, 1, 1, 1, 5, 5),)),
    ]


def _child(item: pydicom.Dataset, code: str) -> list[pydicom.Dataset]:
    return [c for c in item.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == code]


@pytest.mark.parametrize("sr_class", ["enhanced", "comprehensive"])
def test_report_passes_dciodvfy_and_renders(ct: list[pydicom.Dataset], tmp_path: Path, sr_class: str) -> None:
    sr = _build(ct, _findings(ct), sr_class=sr_class)
    path = tmp_path / "grounding.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert _dciodvfy(path) == []
    expected = {"enhanced": pydicom.uid.EnhancedSRStorage, "comprehensive": pydicom.uid.ComprehensiveSRStorage}
    assert sr.SOPClassUID == expected[sr_class]
    dump = subprocess.run([DSRDUMP, "+Pl", "+U8", str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert "Imaging Measurement Report" in dump.stdout
    assert "POLYLINE" in dump.stdout and "Patchy opacity in the right lower lobe." in dump.stdout
    assert "NOT VERIFIED BY A RADIOLOGIST" in dump.stdout


def test_header_joins_the_study_in_a_new_series_as_an_unverified_draft(ct: list[pydicom.Dataset]) -> None:
    sr = _build(ct, _findings(ct))
    assert sr.StudyInstanceUID == ct[0].StudyInstanceUID
    assert (sr.SeriesInstanceUID, sr.SOPInstanceUID) == grounding_sr_uids(JOB)
    assert sr.SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in ct}
    assert set(grounding_sr_uids(JOB)).isdisjoint(sr_uids_for_job(JOB))
    assert sr.PatientName == SENTINEL_NAME and sr.PatientID == ct[0].PatientID
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("PARTIAL", "UNVERIFIED", "PRELIMINARY")
    assert sr.SeriesDescription == "AI FINDINGS ON IMAGES - NOT VERIFIED"
    assert (sr.Modality, sr.Manufacturer, sr.SeriesNumber) == ("SR", "RadAssist", 9902)
    assert sr.ManufacturerModelName == "Qwen/Qwen2.5-VL-7B-Instruct"
    (ours,) = [e for e in sr.ContributingEquipmentSequence if e.Manufacturer == "RadAssist"]
    assert list(ours.SoftwareVersions) == ["RadAssist 0.1.0", "model cc594898"]
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == ct[0].StudyInstanceUID
    assert {r.ReferencedSOPInstanceUID for s in evidence.ReferencedSeriesSequence for r in s.ReferencedSOPSequence} == {
        ds.SOPInstanceUID for ds in ct
    }


def test_content_is_what_ohif_reads(ct: list[pydicom.Dataset]) -> None:
    sr = _build(ct, _findings(ct))
    assert sr.ConceptNameCodeSequence[0].CodeValue == "126000"  # OHIF requires this title
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    device = [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121012"]
    assert device[0].UID == device_observer_uid("Qwen/Qwen2.5-VL-7B-Instruct", "cc594898")
    (library,) = _child(sr, "111028")
    library_images = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in _child(library, "126200")[0].ContentSequence
                      if i.ValueType == "IMAGE"]
    assert library_images == [ct[1].SOPInstanceUID, ct[2].SOPInstanceUID]  # the images with boxes
    (measurements,) = _child(sr, "126010")
    groups = _child(measurements, "125007")
    assert len(groups) == 3  # two boxes of the first finding, one of the third; none for the second
    texts, uids = [], []
    for group in groups:
        assert group.ContentTemplateSequence[0].TemplateIdentifier == "1410"
        (uid_item,) = _child(group, "112040")
        uids.append(uid_item.UID)
        (region,) = [c for c in group.ContentSequence if c.ValueType == "SCOORD"]
        assert region.GraphicType == "POLYLINE" and len(region.GraphicData) == 10
        assert list(region.GraphicData[:2]) == list(region.GraphicData[-2:])  # closed
        assert "ReferencedFrameNumber" not in region.ContentSequence[0].ReferencedSOPSequence[0]
        (comment,) = _child(group, "121106")
        texts.append((_child(group, "112039")[0].TextValue, comment.TextValue))
    assert texts == [
        ("AI finding 1, region 1 of 2", "Patchy opacity in the right lower lobe."),
        ("AI finding 1, region 2 of 2", "Patchy opacity in the right lower lobe."),
        ("AI finding 2", "Small nodule."),
    ]
    first = groups[0]
    assert [float(v) for v in _region_data(first)] == [10.5, 12, 30, 12, 30, 40.25, 10.5, 40.25, 10.5, 12]
    ref = [c for c in first.ContentSequence if c.ValueType == "SCOORD"][0].ContentSequence[0].ReferencedSOPSequence[0]
    assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (ct[1].SOPClassUID, ct[1].SOPInstanceUID)
    assert _child(first, "121071")[0].ConceptCodeSequence[0].CodeValue == "233604007"
    assert not _child(groups[2], "121071")
    assert uids == [tracking_uid(sr.SOPInstanceUID, 0, 0), tracking_uid(sr.SOPInstanceUID, 0, 1),
                    tracking_uid(sr.SOPInstanceUID, 2, 0)]
    assert len(set(uids)) == 3
    (evaluations,) = _child(sr, "C0034375")
    assert [i.TextValue for i in evaluations.ContentSequence] == [
        "AI-GENERATED DRAFT \u2014 NOT VERIFIED BY A RADIOLOGIST. Preliminary, for review only."
    ]


def _region_data(group: pydicom.Dataset) -> list[float]:
    return list([c for c in group.ContentSequence if c.ValueType == "SCOORD"][0].GraphicData)


def test_multiframe_source_is_referenced_with_its_frame(tmp_path: Path) -> None:
    source = marked_multiframe(96, 64, frames=4, marked_frame=3, marker=(60, 10, 80, 30))
    header = headers([source])
    finding = MappedFinding("Marker.", (SourceBox(str(source.SOPInstanceUID), 3, 60, 10, 80, 30),))
    sr = _build(header, [finding])
    path = tmp_path / "grounding.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert _dciodvfy(path) == []
    (group,) = _child(_child(sr, "126010")[0], "125007")
    (region,) = [c for c in group.ContentSequence if c.ValueType == "SCOORD"]
    reference = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert (reference.ReferencedSOPClassUID, reference.ReferencedFrameNumber) == (MULTIFRAME_SC, 3)
    with pytest.raises(ValueError, match='"findings".*frame'):
        _build(header, [MappedFinding("Marker.", (SourceBox(str(source.SOPInstanceUID), 5, 60, 10, 80, 30),))])


def test_rebuilding_for_a_retry_gives_the_same_object(ct: list[pydicom.Dataset]) -> None:
    first, second = _build(ct, _findings(ct)), _build(list(reversed(ct)), _findings(ct))
    assert (first.SeriesInstanceUID, first.SOPInstanceUID) == (second.SeriesInstanceUID, second.SOPInstanceUID)
    assert first.ContentSequence == second.ContentSequence
    assert grounding_sr_uids(JOB) == grounding_sr_uids(uuid.UUID(str(JOB)))
    assert grounding_sr_uids(uuid.uuid4()) != grounding_sr_uids(JOB)


def test_bad_input_is_rejected_naming_the_argument_without_patient_data(
    ct: list[pydicom.Dataset], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ValueError, match='"findings" holds no finding with a box'):
            _build(ct, [MappedFinding("No acute findings.")])
        with pytest.raises(ValueError, match='"findings" is on an image not in "sources"') as excinfo:
            _build(ct, [MappedFinding("A", (SourceBox("1.2.3.4", 1, 1, 1, 2, 2),))])
        assert not any(value in str(excinfo.value) for value in SENTINEL_VALUES)
        with pytest.raises(ValueError, match='"findings" holds a box beyond'):
            _build(ct, [MappedFinding("A", (SourceBox(str(ct[0].SOPInstanceUID), 1, 1, 1, 81, 2),))])
        with pytest.raises(ValueError, match='"findings" has boxes but no text'):
            _build(ct, [MappedFinding(" ", (SourceBox(str(ct[0].SOPInstanceUID), 1, 1, 1, 2, 2),))])
        with pytest.raises(TypeError, match='"findings"'):
            _build(ct, MappedFinding("A"))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match='"sop_instance_uid"'):
            _build(ct, _findings(ct), sop_instance_uid="not-a-uid")
        with pytest.raises(ValueError, match='"sr_class"'):
            _build(ct, _findings(ct), sr_class="basic")
        with pytest.raises(ValueError, match='"sources"'):
            _build([], _findings(ct))
        with pytest.raises(ValueError, match='"model_name"'):
            _build(ct, _findings(ct), model_name=" ")
        no_columns = copy.deepcopy(ct[0])
        del no_columns.Columns
        with pytest.raises(ValueError, match='"sources" cannot describe the images'):
            _build([no_columns], [MappedFinding("A", (SourceBox(str(ct[0].SOPInstanceUID), 1, 1, 1, 2, 2),))])
        _build(ct, _findings(ct))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(value in logged for value in SENTINEL_VALUES)
    assert "Patchy opacity" not in logged
