"""The OpenAI-compatible backend against a local stand-in server (see openai_standin.py: a test
stand-in for vLLM/SGLang/TGI serving the tiny model through the same protocol)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from radassist.config import ModelSettings
from radassist.errors import PermanentFailure, TransientFailure
from radassist.imaging import prepare_study
from radassist.models import loader
from radassist.models.drafting import DraftInput, draft_many
from radassist.models.openai_backend import OpenAIDraftModel
from radassist.models.postprocess import split_report
from radassist_devtools.tiny_models import DEFAULT_TINY_REPORT
from tests.conftest import free_port
from tests.drafting.openai_standin import create_app, serve

KEY = "test-key-not-a-secret"


@pytest.fixture(scope="module")
def server(tiny_models: dict[str, Path]) -> Iterator[tuple[str, object]]:
    app = create_app(str(tiny_models["qwen2_vl"]), "tiny-qwen", api_key=KEY)
    with serve(app) as url:
        yield url, app


def settings(url: str, **extra: object) -> ModelSettings:
    values: dict[str, object] = {"max_new_tokens": 32, **extra}
    return ModelSettings(name="tiny-qwen", backend="openai", url=url, api_key=SecretStr(KEY), concurrency=2,
                         request_timeout_s=30, **values)  # type: ignore[arg-type]


def test_drafts_multi_image_studies_through_the_server(server: tuple[str, object], testdata: Path) -> None:
    url, app = server
    loader.clear_cache()
    model = loader.get_draft_model(settings(url))
    assert isinstance(model, OpenAIDraftModel)
    data = testdata / "pydicom-data"
    studies = [
        prepare_study([data / "emri_small_RLE.dcm"], image_size=64, max_images=3),
        prepare_study([data / "RG1_J2KR.dcm"], image_size=64, max_images=3),
    ]
    results = draft_many(model, [DraftInput(s) for s in studies])
    for result in results:
        assert not isinstance(result, Exception)
        assert (result.findings, result.impression) == split_report(DEFAULT_TINY_REPORT)
        assert result.generation["backend"] == "openai" and result.generation["stopped"] == "eos"
        assert result.model_name == "tiny-qwen"
    sent = app.state.seen[-2:]  # type: ignore[attr-defined]
    contents = sorted((body["messages"][0]["content"] for body in sent), key=len)
    image_items = [i for i in contents[-1] if i["type"] == "image_url"]
    assert len(image_items) == 3 and image_items[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert contents[-1][0] == {"type": "text", "text": "Image 1: slice 1 of 3"}
    assert all(body["temperature"] == 0.0 and body["max_tokens"] == 32 for body in sent)
    loader.clear_cache()


def test_truncated_answer_is_a_warning_on_the_draft(server: tuple[str, object], testdata: Path) -> None:
    url, _ = server
    model = OpenAIDraftModel(settings(url, max_new_tokens=3))
    study = prepare_study([testdata / "pydicom-data" / "RG1_J2KR.dcm"], image_size=64, max_images=1)
    [result] = draft_many(model, [DraftInput(study)])
    assert not isinstance(result, PermanentFailure)
    assert [w["check"] for w in result.generation["safety_warnings"]] == ["truncated"]


def test_server_errors_are_classified(server: tuple[str, object], testdata: Path) -> None:
    url, _ = server
    study = prepare_study([testdata / "pydicom-data" / "RG1_J2KR.dcm"], image_size=64, max_images=1)
    wrong_key = OpenAIDraftModel(settings(url).model_copy(update={"api_key": SecretStr("wrong")}))
    [refused] = draft_many(wrong_key, [DraftInput(study)])
    assert isinstance(refused, PermanentFailure) and refused.code == "model.server_rejected"
    assert "wrong" not in refused.message
    nobody = OpenAIDraftModel(settings(f"http://127.0.0.1:{free_port()}/v1"))
    [unreachable] = draft_many(nobody, [DraftInput(study)])
    assert isinstance(unreachable, TransientFailure) and unreachable.code == "model.server_unreachable"
    with pytest.raises(PermanentFailure, match="url"):
        OpenAIDraftModel(ModelSettings(name="x", backend="openai"))
