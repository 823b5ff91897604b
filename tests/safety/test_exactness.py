"""SR and ORU exactness: the model named by id and revision (never a local path), our dates and
times in the study's time zone with its offset, and the warnings stated after the draft notice."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import hl7
import pydicom
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from radassist.config import Hl7Settings, ModelSettings
from radassist.hl7.oru import NTE_NOTICE, build_oru
from radassist.models.identity import model_identity, weights_revision
from radassist.sr import codes
from radassist.sr.document import build_draft_sr

NOW = dt.datetime(2026, 12, 6, 6, 18, 4, tzinfo=dt.UTC)
WARNING = "Automated check warning (anatomy): the report describes lungs (chest), but this study images the breast."


@pytest.fixture
def rg1(testdata: Path) -> pydicom.Dataset:
    """A CR whose header declares TimezoneOffsetFromUTC -0400."""
    ds = pydicom.dcmread(testdata / "pydicom-data" / "RG1_J2KR.dcm", stop_before_pixels=True)
    assert ds.TimezoneOffsetFromUTC == "-0400"
    return ds


def _sr(source: pydicom.Dataset, **kwargs: object) -> pydicom.Dataset:
    args: dict[str, object] = {"findings": "Clear lungs.", "impression": "Normal.", "series_instance_uid": "1.2.3",
                               "sop_instance_uid": "1.2.4", "model_name": "google/medgemma-4b-it",
                               "model_revision": "sha256:0123456789abcdef", "software_version": "1.0", "now": NOW}
    args.update(kwargs)
    return build_draft_sr([source], **args)  # type: ignore[arg-type]


def test_sr_times_carry_the_study_offset(rg1: pydicom.Dataset) -> None:
    sr = _sr(rg1)
    assert sr.TimezoneOffsetFromUTC == "-0400"
    stamps = [item.ContributionDateTime for item in sr.ContributingEquipmentSequence if "ContributionDateTime" in item]
    assert len(stamps) == 2  # ours and highdicom's own item: the same instant, written the same way
    assert {str(s) for s in stamps} == {"20261206021804-0400"}
    assert (str(sr.ContentDate), str(sr.ContentTime), str(sr.InstanceCreationTime)) == ("20261206", "021804", "021804")


def test_sr_times_without_a_study_offset_are_local_without_one(rg1: pydicom.Dataset) -> None:
    source = copy.deepcopy(rg1)
    del source.TimezoneOffsetFromUTC
    sr = _sr(source)
    assert "TimezoneOffsetFromUTC" not in sr
    local = NOW.astimezone().replace(tzinfo=None).strftime("%Y%m%d%H%M%S")
    stamps = {str(item.ContributionDateTime) for item in sr.ContributingEquipmentSequence
              if "ContributionDateTime" in item}
    assert stamps == {local}


def test_sr_states_warnings_after_the_notice(rg1: pydicom.Dataset) -> None:
    sr = _sr(rg1, warnings=[WARNING])
    findings = next(item for item in sr.ContentSequence if item.ConceptNameCodeSequence[0].CodeMeaning == "Findings")
    texts = [item.TextValue for item in findings.ContentSequence if "TextValue" in item]
    assert texts == [codes.DRAFT_NOTICE, WARNING, "Clear lungs."]
    with pytest.raises(TypeError, match='"warnings"'):
        _sr(rg1, warnings=WARNING)


def test_oru_times_and_notes(rg1: pydicom.Dataset) -> None:
    er7 = build_oru(rg1, findings="Clear lungs.", impression="Normal.", control_id="abc", study_instance_uid=str(
        rg1.StudyInstanceUID), hl7=Hl7Settings(host="ris"), now=NOW, warnings=[WARNING, "Second | warning ^ &."])
    parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    message = hl7.parse(er7)
    assert str(message.segment("MSH")[7]) == "20261206021804-0400"
    obr = message.segment("OBR")
    assert str(obr[22]) == "20261206021804-0400"
    assert str(obr[7]) == f"{rg1.StudyDate}{rg1.StudyTime}-0400"  # the study's own time, with its offset
    assert {str(s[14]) for s in message.segments("OBX")} == {"20261206021804-0400"}
    notes = message.segments("NTE")
    assert [str(n[1]) for n in notes] == ["1", "2", "3"]
    assert str(notes[0][3]) == NTE_NOTICE
    assert message.unescape(str(notes[2][3])) == "Second | warning ^ &."
    assert str(notes[1][3]) == WARNING


def test_a_local_folder_is_named_by_id_and_weight_hash(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "tiny-gemma3"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gemma3", "_name_or_path": str(tmp_path)}))
    (folder / "model.safetensors").write_bytes(b"weights-1")
    name, revision = model_identity(ModelSettings(name=str(folder)))
    assert name == "tiny-gemma3" and revision is not None and revision.startswith("sha256:") and len(revision) == 23
    assert str(tmp_path) not in name  # a declared path is not an id
    assert model_identity(ModelSettings(name=str(folder), model_id="acme/tiny-gemma3")) == ("acme/tiny-gemma3", revision)
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "google/medgemma-4b-it"}))
    assert model_identity(ModelSettings(name=str(folder)))[0] == "google/medgemma-4b-it"
    # The same weights elsewhere are the same revision; other weights are not.
    copy_folder = tmp_path / "elsewhere"
    copy_folder.mkdir()
    (copy_folder / "model.safetensors").write_bytes(b"weights-1")
    assert weights_revision(copy_folder) == revision
    (copy_folder / "model.safetensors").write_bytes(b"weights-2")
    assert weights_revision(copy_folder) != revision
    assert model_identity(ModelSettings(name="google/medgemma-4b-it"), "c0ffee") == ("google/medgemma-4b-it", "c0ffee")
    assert model_identity(ModelSettings(name="google/medgemma-4b-it", revision="v1"), "c0ffee")[1] == "v1"
