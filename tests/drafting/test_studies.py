"""Every kind of study through every tiny architecture, by the same backend code and real ``generate``.

Kinds: the chest CR (MONOCHROME1, JPEG 2000), a PA + lateral pair, the mammogram without view
tags, a generated 300-slice CT series, the enhanced multi-frame CT, and an enhanced MR.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from radassist.config import ModelSettings
from radassist.imaging import prepare_study
from radassist.imaging.prepare import PreparedStudy
from radassist.models import loader
from radassist.models.drafting import DraftInput, draft_many, draft_one
from radassist.models.postprocess import split_report
from radassist.models.profiles import ProfileChooser
from radassist.models.transformers_backend import TransformersDraftModel
from radassist_devtools.tiny_models import DEFAULT_TINY_REPORT
from tests.conftest import TESTDATA
from tests.drafting.conftest import ARCHS, write_ct_series

EXPECTED = split_report(DEFAULT_TINY_REPORT)
MODEL_SETTINGS = ModelSettings(name="unused", local_files_only=True, max_new_tokens=32, image_size=64, max_images=8,
                               max_slices=6)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[PreparedStudy, str]]:
    """Each kind prepared once, with the profile the worker would choose."""
    testdata = TESTDATA
    data = testdata / "pydicom-data"
    root = tmp_path_factory.mktemp("studies")
    ct_paths = write_ct_series(root / "ct", 300, size=16)
    pair = []
    for view, number in (("LL", 1), ("PA", 2)):
        ds = pydicom.dcmread(data / "RG1_J2KI.dcm")
        ds = copy.deepcopy(ds)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.ViewPosition = view
        ds.InstanceNumber = number
        path = root / f"{view}.dcm"
        ds.save_as(path)
        pair.append(path)
    kinds = {
        "cr": [data / "RG1_J2KR.dcm"],
        "pa_lat": pair,
        "mammogram": [testdata / "mammograms" / "1-282.dcm"],
        "ct_300": ct_paths,
        "enhanced_ct": [data / "eCT_Supplemental.dcm"],
        "mr": [data / "emri_small_jpeg_ls_lossless.dcm"],
    }
    out = {}
    for kind, paths in kinds.items():
        chooser = ProfileChooser(MODEL_SETTINGS)
        study = prepare_study(paths, image_size=64, max_images=MODEL_SETTINGS.max_images, resolve=chooser)
        assert chooser.profile is not None
        out[kind] = (study, chooser.profile.name)
    return out


@pytest.fixture(scope="module")
def models(tiny_models: dict[str, Path]) -> Iterator[dict[str, TransformersDraftModel]]:
    loader.clear_cache()
    yield {
        arch: TransformersDraftModel(MODEL_SETTINGS.model_copy(update={"name": str(folder)}))
        for arch, folder in tiny_models.items()
    }
    loader.clear_cache()


def test_each_kind_is_prepared_as_a_radiologist_would_read_it(studies: dict[str, tuple[PreparedStudy, str]]) -> None:
    cr, profile = studies["cr"]
    assert profile == "cxr" and cr.labels == ("PA",) and len(cr.images) == 1

    pair, profile = studies["pa_lat"]
    assert profile == "cxr"
    assert pair.labels == ("PA", "lateral")  # frontal first although the lateral arrived first

    mammo, profile = studies["mammogram"]
    assert profile == "mammography"
    assert mammo.labels == ("R view unknown",)  # Laterality R (series level); no view tags
    assert any("view tags missing" in note for note in mammo.notes)
    assert any("0 of 4 standard views" in note for note in mammo.notes)
    assert mammo.lateralities == frozenset({"R"})

    ct, profile = studies["ct_300"]
    assert profile == "ct_chest"  # BodyPartExamined CHEST
    assert len(ct.images) == 6 and ct.labels[0] == "slice 1 of 6"
    assert ct.series_chosen is not None
    assert ct.series_chosen["slices_total"] == 300 and ct.series_chosen["slices_shown"] == 6
    assert ct.series_chosen["series_number"] == 3 and ct.series_chosen["series_description"] == "AXIAL 2.5 SOFT"
    assert len(ct.series_chosen["series_uid_hash"]) == 12
    assert "6 of 300 slices shown" in ct.notes
    assert any("packed as R/G/B: lung, soft_tissue, bone" in note for note in ct.notes)
    assert ct.context.series_description == "AXIAL 2.5 SOFT"

    enhanced, profile = studies["enhanced_ct"]
    assert profile == "ct"  # no body part: the general CT profile, still three windows
    assert enhanced.series_chosen is not None and enhanced.series_chosen["enhanced"] is True
    assert enhanced.series_chosen["slices_total"] == 2 and len(enhanced.images) == 2

    mr, profile = studies["mr"]
    assert profile == "mr_brain"  # BodyPartExamined HEAD
    assert mr.series_chosen is not None and mr.series_chosen["slices_total"] == 10
    assert len(mr.images) == 6


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_drafts_every_kind(
    arch: str, models: dict[str, TransformersDraftModel], studies: dict[str, tuple[PreparedStudy, str]]
) -> None:
    from radassist.models.profiles import BUILTIN_PROFILES

    model = models[arch]
    profiles = {p.name: p for p in BUILTIN_PROFILES}
    for kind, (study, profile_name) in studies.items():
        result = draft_one(model, DraftInput(study, profiles[profile_name]))
        assert (result.findings, result.impression) == EXPECTED, (arch, kind)
        assert result.generation["images"] == len(study.images)
        assert result.generation["stopped"] == "eos"
        assert result.generation["profile"] == profile_name
        assert result.generation["series_chosen"] == study.series_chosen
        assert result.prompt.count("Findings:") == 1 and profiles[profile_name].instruction in result.prompt
        assert result.generation["image_labels"] == list(study.labels)


@pytest.mark.parametrize("arch", ARCHS)
def test_studies_queued_together_share_one_generate(
    arch: str, models: dict[str, TransformersDraftModel], studies: dict[str, tuple[PreparedStudy, str]]
) -> None:
    """Different image counts and prompt lengths in one left-padded batch: each gets its own draft."""
    items = [DraftInput(studies[k][0]) for k in ("cr", "pa_lat", "mr")]
    results = draft_many(models[arch], items)
    for result in results:
        assert not isinstance(result, Exception)
        assert (result.findings, result.impression) == EXPECTED
        assert result.generation["batch_size"] == 3


def test_cut_off_output_is_kept_with_a_truncated_warning(
    tiny_models: dict[str, Path], studies: dict[str, tuple[PreparedStudy, str]]
) -> None:
    """max_new_tokens too small to reach the Impression: the draft is kept with a ``truncated`` warning,
    for the safety gate to hold (the default) rather than send half a report."""
    model = TransformersDraftModel(MODEL_SETTINGS.model_copy(update={"name": str(tiny_models["gemma3"]),
                                                                     "max_new_tokens": 3}))
    result = draft_many(model, [DraftInput(studies["cr"][0])])[0]
    assert not isinstance(result, Exception)
    assert [w["check"] for w in result.generation["safety_warnings"]] == ["truncated"]
    assert "before an Impression" in result.generation["safety_warnings"][0]["message"]


def test_out_of_memory_halves_the_batch_and_reports_it(
    tiny_models: dict[str, Path], studies: dict[str, tuple[PreparedStudy, str]]
) -> None:
    """Fault injection: a batch larger than one 'does not fit'; the halves do and say so."""
    import torch

    class SmallGpu(TransformersDraftModel):
        def _run(self, requests, oom_splits):  # type: ignore[no-untyped-def]
            if len(requests) > 1:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return super()._run(requests, oom_splits)

    model = SmallGpu(MODEL_SETTINGS.model_copy(update={"name": str(tiny_models["llava"])}))
    results = draft_many(model, [DraftInput(studies[k][0]) for k in ("cr", "mammogram", "mr", "pa_lat")])
    assert all(not isinstance(r, Exception) for r in results)
    assert [r.generation["oom_splits"] for r in results] == [2, 2, 2, 2]  # type: ignore[union-attr]
    assert [r.generation["batch_size"] for r in results] == [1, 1, 1, 1]  # type: ignore[union-attr]


def test_consistency_warnings_are_recorded_with_the_draft(
    tmp_path: Path, studies: dict[str, tuple[PreparedStudy, str]]
) -> None:
    """A report about the left breast and the uterus, on a right-sided mammogram of a male patient."""
    import dataclasses

    from radassist_devtools.tiny_models import write_tiny_model

    folder = write_tiny_model(
        tmp_path / "odd", arch="qwen2_vl",
        report="Findings: Spiculated mass in the left breast. The uterus is enlarged. Impression: Suspicious left breast mass.",
    )
    model = TransformersDraftModel(MODEL_SETTINGS.model_copy(update={"name": str(folder)}))
    study = dataclasses.replace(studies["mammogram"][0],
                                context=dataclasses.replace(studies["mammogram"][0].context, sex="male"))
    result = draft_one(model, DraftInput(study))
    warnings = result.generation["consistency_warnings"]
    assert any(w.startswith("laterality:") for w in warnings)
    assert any(w.startswith("sex:") and "uterus" in w for w in warnings)
    # The uterus is also no part of a mammogram: another study's words mixed in.
    assert {w["check"] for w in result.generation["safety_warnings"]} == {"anatomy", "laterality", "sex"}
