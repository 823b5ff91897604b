"""The tiny offline model drafts its fixed report through the real transformers generate path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from radassist.config import ModelSettings
from radassist.imaging import prepare_study
from radassist.models import DraftModel, loader
from radassist.models.postprocess import split_report
from radassist.models.prompts import PROMPT_VERSION
from radassist_devtools.tiny_models import DEFAULT_TINY_REPORT, write_tiny_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "gemma3")


@pytest.fixture
def settings(tiny_folder: Path) -> Iterator[ModelSettings]:
    loader.clear_cache()
    yield ModelSettings(name=str(tiny_folder), local_files_only=True, max_new_tokens=64, image_size=64)
    loader.clear_cache()


def test_tiny_model_is_small(tiny_folder: Path) -> None:
    size = sum(p.stat().st_size for p in tiny_folder.rglob("*") if p.is_file())
    assert size < 5_000_000
    assert (tiny_folder / "model.safetensors").is_file()
    assert '"model_type": "gemma3"' in (tiny_folder / "config.json").read_text(encoding="utf-8")


def test_drafts_the_fixed_report_from_a_cr(settings: ModelSettings, testdata: Path) -> None:
    from radassist.models.transformers_backend import TransformersDraftModel

    study = prepare_study(
        [testdata / "pydicom-data" / "RG1_J2KR.dcm"], image_size=settings.image_size, max_images=4
    )
    model = TransformersDraftModel(settings)
    assert isinstance(model, DraftModel)
    result = model.draft(study)
    assert (result.findings, result.impression) == split_report(DEFAULT_TINY_REPORT)
    assert result.findings.startswith("The lungs are clear.")
    assert result.impression == "No acute cardiopulmonary abnormality."
    assert result.raw_text == DEFAULT_TINY_REPORT
    assert "computed radiography" in result.prompt and "64 years" in result.prompt
    assert result.prompt_version == PROMPT_VERSION
    # A local folder is named by its own name and a hash of its weights, never by its path.
    assert result.model_name == Path(settings.name).name and "/" not in result.model_name
    assert result.model_revision is not None and result.model_revision.startswith("sha256:")
    assert result.generation["do_sample"] is False
    assert result.generation["max_new_tokens"] == 64
    assert result.generation["images"] == 1
    assert 0 < result.generation["new_tokens"] < 64  # stopped at end_of_turn, not at the limit
    assert result.generation["seconds"] >= 0


def test_loader_caches_and_multi_image_study(settings: ModelSettings, testdata: Path) -> None:
    model = loader.get_draft_model(settings)
    assert loader.get_draft_model(settings) is model
    study = prepare_study([testdata / "pydicom-data" / "emri_small_RLE.dcm"], image_size=64, max_images=3)
    result = model.draft(study)
    assert result.generation["images"] == 3
    assert result.impression == "No acute cardiopulmonary abnormality."


def test_custom_report(tmp_path: Path, testdata: Path) -> None:
    from radassist.models.transformers_backend import TransformersDraftModel

    report = "Findings: Mild cardiomegaly. The lungs are clear. Impression: Mild cardiomegaly without edema."
    folder = write_tiny_model(tmp_path / "custom", report=report)
    model = TransformersDraftModel(ModelSettings(name=str(folder), local_files_only=True, max_new_tokens=32))
    study = prepare_study([testdata / "pydicom-data" / "693_J2KR.dcm"], image_size=64, max_images=2)
    result = model.draft(study)
    assert result.findings == "Mild cardiomegaly. The lungs are clear."
    assert result.impression == "Mild cardiomegaly without edema."


def test_llava_architecture_drafts_the_same_report(tmp_path: Path, testdata: Path) -> None:
    from radassist.models.transformers_backend import TransformersDraftModel

    folder = write_tiny_model(tmp_path / "llava", arch="llava")
    model = TransformersDraftModel(ModelSettings(name=str(folder), local_files_only=True, max_new_tokens=32))
    assert type(model.model).__name__ == "LlavaForConditionalGeneration"
    study = prepare_study([testdata / "pydicom-data" / "RG1_J2KR.dcm"], image_size=64, max_images=1)
    result = model.draft(study)
    assert (result.findings, result.impression) == split_report(DEFAULT_TINY_REPORT)


def test_builder_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="arch"):
        write_tiny_model(tmp_path / "x", arch="not-an-arch")
    with pytest.raises(ValueError, match="report"):
        write_tiny_model(tmp_path / "y", report="Findings: Same. Same. Impression: Fine.")
