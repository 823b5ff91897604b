"""A site adapter (``[model] backend = "adapter"``) goes through the same drafting code."""

from __future__ import annotations

from pathlib import Path

import pytest

from radassist.config import ModelSettings
from radassist.errors import PermanentFailure
from radassist.imaging import prepare_study
from radassist.models import GenerationBackend, loader
from radassist.models.drafting import DraftInput, draft_one
from radassist.models.postprocess import split_report
from radassist_devtools.tiny_models import DEFAULT_TINY_REPORT


def test_site_adapter_is_loaded_and_drafts(tiny_models: dict[str, Path], testdata: Path) -> None:
    loader.clear_cache()
    settings = ModelSettings(name=str(tiny_models["llava"]), backend="adapter", max_new_tokens=32,
                             adapter="tests.drafting.example_adapter:ExampleAdapter")
    model = loader.get_draft_model(settings)
    assert isinstance(model, GenerationBackend)
    study = prepare_study([testdata / "pydicom-data" / "RG1_J2KR.dcm"], image_size=64, max_images=1)
    result = draft_one(model, DraftInput(study))
    assert (result.findings, result.impression) == split_report(DEFAULT_TINY_REPORT)
    assert result.generation["backend"] == "adapter:example"
    loader.clear_cache()


def test_bad_adapter_name_is_unavailable() -> None:
    loader.clear_cache()
    with pytest.raises(PermanentFailure) as caught:
        loader.get_draft_model(ModelSettings(name="x", backend="adapter", adapter="no.such.module:Thing"))
    assert caught.value.code == "model.unavailable"
    loader.clear_cache()
