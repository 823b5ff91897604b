"""Which backends ground and how their pictures are completed with the processor's steps; the grounding
record stored with a draft, read back and refused when malformed; imaging's recorded geometry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from radassist.config import ModelSettings
from radassist.grounding import BoxGrammar, MappedFinding, PictureGeometry, Resize, Size, SourceBox
from radassist.grounding.boxes import GroundingWarning
from radassist.grounding.geometry import Crop, Pad, Step
from radassist.grounding.processors import maira_2_steps, qwen2_vl_resize
from radassist.grounding.record import (
    grounding_record,
    recorded_findings,
    recorded_pictures,
    recorded_warnings,
)
from radassist.imaging import prepare_study
from radassist.imaging.context import ClinicalContext
from radassist.imaging.geometry import fit_picture, picture_geometry
from radassist.imaging.prepare import PreparedStudy
from radassist.models.grounded import ground, model_geometries, resolve_grammar, with_instruction
from radassist.models.openai_backend import OpenAIDraftModel
from tests.grounding.marked import marked_ct

UID = "1.2.826.0.1.3680043.8.498.11"
BOX_TEXT = 'Focus in the left base.\n```json\n[{"bbox_2d": [10, 10, 20, 20], "label": "Focus"}]\n```'


def _study(*geometries: PictureGeometry, images: int = 1) -> PreparedStudy:
    return PreparedStudy(images=tuple(Image.new("RGB", (8, 8)) for _ in range(images)), context=ClinicalContext(),
                         source_sop_instance_uids=(UID,), geometries=geometries)


class Plain:
    """A backend that does not ground (no ``box_grammar``)."""


class Grounding:
    box_grammar = BoxGrammar.QWEN2_5_VL

    def __init__(self, steps: tuple[Step, ...] | None = None, fails: bool = False) -> None:
        self.steps, self.fails = steps, fails
        self.asked: list[tuple[Size, int]] = []

    def picture_steps(self, size: Size, pictures: int) -> tuple[Step, ...]:
        self.asked.append((size, pictures))
        if self.fails:
            raise ValueError("unknown processor")
        return self.steps or ()


def test_the_grammar_is_the_setting_or_recognised_from_the_model() -> None:
    assert resolve_grammar("auto", "/models/x", "Qwen2_5_VLForConditionalGeneration") is BoxGrammar.QWEN2_5_VL
    assert resolve_grammar("auto", "google/medgemma-4b-it", "Gemma3ForConditionalGeneration") is None
    assert resolve_grammar("none", "Qwen/Qwen2.5-VL-7B-Instruct") is None
    assert resolve_grammar("maira_2", "my-site-model") is BoxGrammar.MAIRA_2
    served = OpenAIDraftModel(ModelSettings(backend="openai", url="http://127.0.0.1:9/v1",
                                            name="Qwen/Qwen2.5-VL-7B-Instruct"))
    assert served.box_grammar is BoxGrammar.QWEN2_5_VL
    assert not hasattr(served, "picture_steps")  # its processor is on the server: the stock one's sizing


def test_only_a_grounding_backend_is_asked_for_boxes() -> None:
    assert with_instruction("Report.", None) == "Report."
    asked = with_instruction("Report.", BoxGrammar.QWEN2_5_VL)
    assert asked.startswith("Report.\n\n") and '"bbox_2d"' in asked and '"image"' in asked
    assert with_instruction("Report.", BoxGrammar.MAIRA_2) == "Report."  # its processor asks for them


def test_a_backend_that_does_not_ground_keeps_its_text() -> None:
    assert ground(Plain(), _study(PictureGeometry(UID, 1, 40, 40, 0)), BOX_TEXT) == (BOX_TEXT, None)


def test_the_backend_processor_steps_complete_each_picture() -> None:
    own = (Resize(Size(40, 40), Size(80, 80)),)
    backend = Grounding(own)
    text, record = ground(backend, _study(PictureGeometry(UID, 1, 40, 40, 0), images=2), BOX_TEXT)
    assert text == "Focus in the left base."
    assert backend.asked == [(Size(40, 40), 2)]  # the picture's size and how many pictures were shown
    assert record is not None and recorded_pictures(record)[0].steps == own
    (finding,) = recorded_findings(record)
    assert finding.boxes == (SourceBox(UID, 1, 5.0, 5.0, 10.0, 10.0),)  # model pixels halved back


def test_pictures_whose_processor_sizing_is_unknown_lose_their_boxes() -> None:
    _, record = ground(Grounding(fails=True), _study(PictureGeometry(UID, 1, 40, 40, 0)), BOX_TEXT)
    assert record is not None and recorded_pictures(record) == ()
    assert [w.code for w in recorded_warnings(record)] == ["grounding.box.picture"]
    assert recorded_findings(record)[0].boxes == ()


def test_a_served_model_is_mapped_with_its_stock_processor() -> None:
    class Served:
        box_grammar = BoxGrammar.QWEN2_5_VL

    class ServedMaira:
        box_grammar = BoxGrammar.MAIRA_2

    geometry = PictureGeometry(UID, 1, 896, 600, 0)
    (qwen,) = model_geometries(Served(), BoxGrammar.QWEN2_5_VL, _study(geometry))
    assert qwen.steps == (qwen2_vl_resize(Size(896, 600)),)
    (maira,) = model_geometries(ServedMaira(), BoxGrammar.MAIRA_2, _study(geometry))
    assert maira.steps == maira_2_steps(Size(896, 600))


def test_the_record_reads_back_and_refuses_what_is_malformed() -> None:
    steps: tuple[Step, ...] = (Crop(Size(100, 60), 0, 5, 100, 50), Resize(Size(100, 50), Size(50, 25)),
                               Pad(Size(50, 25), 0, 12, 0, 13))
    picture = PictureGeometry(UID, 2, 100, 60, 0, steps)
    findings = [MappedFinding("A", (SourceBox(UID, 2, 1.5, 2.0, 30.0, 40.0, True),)), MappedFinding("B")]
    warnings = [GroundingWarning("grounding.box.empty", "zero width or height", 1, 0)]
    record = json.loads(json.dumps(grounding_record("qwen2_5_vl", findings, warnings, [picture])))
    assert recorded_pictures(record) == (picture,)
    assert recorded_findings(record) == tuple(findings)
    assert recorded_warnings(record) == tuple(warnings)

    def broken(change: Any) -> dict[str, Any]:
        copy = json.loads(json.dumps(record))
        change(copy)
        return copy

    with pytest.raises(ValueError, match="version"):
        recorded_findings(broken(lambda r: r.update(version=2)))
    with pytest.raises(ValueError, match='"x_min" of box 0 of finding 0'):
        recorded_findings(broken(lambda r: r["findings"][0]["boxes"][0].update(x_min=True)))
    with pytest.raises(ValueError, match="do not make a box"):
        recorded_findings(broken(lambda r: r["findings"][0]["boxes"][0].update(x_max=0.5)))
    with pytest.raises(ValueError, match='"kind"'):
        recorded_pictures(broken(lambda r: r["pictures"][0]["steps"][0].update(kind="rotate")))
    with pytest.raises(ValueError, match='"steps"'):  # a step that does not follow its predecessor
        recorded_pictures(broken(lambda r: r["pictures"][0]["steps"][1].update(before=[99, 50])))


def test_imaging_records_a_geometry_per_picture(tmp_path: Path) -> None:
    """One per picture: CT windows shown as separate pictures share their frame's geometry."""
    path = tmp_path / "ct.dcm"
    ds = marked_ct(300, 200, (10, 10, 20, 20))
    ds.save_as(path, enforce_file_format=True)
    study = prepare_study([path], image_size=150, max_images=6, windows=("lung", "bone"), window_mode="images")
    assert len(study.images) == 2
    assert [(g.picture, g.frame_number, g.steps) for g in study.geometries] == [
        (0, 1, (Resize(Size(300, 200), Size(150, 100)),)), (1, 1, (Resize(Size(300, 200), Size(150, 100)),))]
    # A picture that is already small enough is shown as it is; padding is recorded where applied.
    small, steps = fit_picture(Image.new("RGB", (30, 10)), 64, square=True)
    assert small.size == (30, 30) and steps == (Pad(Size(30, 10), 0, 10, 0, 10),)
    # A decoded size other than the header's Columns x Rows: no geometry (a box could not be placed).
    assert picture_geometry(ds, 0, 0, Size(300, 200), ()) is not None
    assert picture_geometry(ds, 0, 0, Size(200, 300), ()) is None
    assert picture_geometry(ds, 1, 0, Size(300, 200), ()) is None  # no second frame


def test_a_loaded_model_is_recognised_by_what_it_is_not_where_it_lies(tmp_path: Path) -> None:
    """Architecture and processor first, then the model folder's own name (not the folders above it)."""
    from radassist.models.transformers_backend import TransformersDraftModel
    from radassist_devtools.tiny_models import write_tiny_model

    def loaded(arch: str, folder: Path, **settings: Any) -> TransformersDraftModel:
        write_tiny_model(folder, arch=arch)
        return TransformersDraftModel(ModelSettings(name=str(folder), local_files_only=True, **settings))

    lookalike = tmp_path / "qwen2_5_vl-experiments"
    assert loaded("qwen2_vl", lookalike / "qwen2-vl-2b").box_grammar is None  # 0-1000 grid: not this grammar
    qwen = loaded("qwen2_5_vl", tmp_path / "site-model")
    assert qwen.box_grammar is BoxGrammar.QWEN2_5_VL
    assert qwen.picture_steps(Size(112, 56), 1) == (Resize(Size(112, 56), Size(56, 28)),)
    radvlm = loaded("llava_onevision", tmp_path / "radvlm")
    assert radvlm.box_grammar is None  # drafts; its boxes have no parser yet
    assert radvlm.picture_steps(Size(64, 40), 2) == (Pad(Size(64, 40), 0, 12, 0, 12), Resize(Size(64, 64), Size(32, 32)))
    assert loaded("qwen2_5_vl", tmp_path / "off", box_grammar="none").box_grammar is None
