"""Prompt text, the loader's failure handling, and the import boundary (no torch on import)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from radassist.config import ModelSettings
from radassist.errors import PermanentFailure
from radassist.imaging import ClinicalContext
from radassist.models import loader
from radassist.models.prompts import PROMPT_VERSION, build_prompt


@pytest.fixture(autouse=True)
def fresh_loader() -> Iterator[None]:
    loader.clear_cache()
    yield
    loader.clear_cache()


def test_prompt_names_the_context_and_the_headings() -> None:
    context = ClinicalContext(
        modality="CR",
        body_part="chest",
        study_description="THORAX PA",
        age="64 years",
        sex="female",
        indication="Fever and cough",
    )
    prompt = build_prompt(context, 2)
    for expected in (
        "Findings:",
        "Impression:",
        "computed radiography",
        "chest",
        "THORAX PA",
        "64 years",
        "female",
        "Fever and cough",
        "2 images",
    ):
        assert expected in prompt
    assert PROMPT_VERSION == "3"


def test_prompt_without_context_still_asks_for_both_sections() -> None:
    prompt = build_prompt(ClinicalContext(), 1)
    assert "Findings:" in prompt and "Impression:" in prompt
    assert "Patient:" not in prompt
    with pytest.raises(ValueError, match="n_images"):
        build_prompt(ClinicalContext(), 0)


def test_missing_folder_is_unavailable_and_remembered(tmp_path: Path) -> None:
    settings = ModelSettings(name=str(tmp_path / "no-such-model"), local_files_only=True)
    with pytest.raises(PermanentFailure) as first:
        loader.get_draft_model(settings)
    assert first.value.code == "model.unavailable"
    assert "not found" in first.value.message
    # Created now, but the failure is remembered for a while: the next job fails fast, same reason.
    (tmp_path / "no-such-model").mkdir()
    with pytest.raises(PermanentFailure) as second:
        loader.get_draft_model(settings)
    assert second.value.message == first.value.message
    loader.clear_cache()
    with pytest.raises(PermanentFailure) as third:
        loader.get_draft_model(settings)
    assert "config.json" in third.value.message


def test_bad_folder_gives_a_clean_reason(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PermanentFailure) as caught:
        loader.get_draft_model(ModelSettings(name=str(folder), local_files_only=True))
    assert caught.value.code == "model.unavailable"
    assert "\n" not in caught.value.message and len(caught.value.message) < 500


def test_uncached_hub_id_offline_fails_fast() -> None:
    settings = ModelSettings(name="radassist-tests/no-such-model", local_files_only=True)
    started = time.monotonic()
    with pytest.raises(PermanentFailure) as caught:
        loader.get_draft_model(settings)
    assert caught.value.code == "model.unavailable"
    assert time.monotonic() - started < 30


def test_importing_the_model_package_loads_no_torch() -> None:
    code = "import sys, radassist.models, radassist.imaging; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
