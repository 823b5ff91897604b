"""CheXbert when its files are there; the rule labeler when they are not (nothing is downloaded).

The checkpoint here is a tiny BERT made in the test (the real one is 400 MB): its heads are set so
each observation gets a known class, which checks the loading path and the class → label mapping.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from radassist.config.quality import QualitySettings
from radassist.quality import Label, Scorer
from radassist.quality.chexbert import CLASS_LABELS, HEAD_ORDER, load_chexbert, missing_files

REPORT = "Small left pleural effusion. No pneumothorax."


def write_tiny_chexbert(folder: Path) -> dict[str, Label]:
    """A CheXbert folder whose model answers class ``i % 4`` for head i (No Finding: ``i % 2``)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("f1chexbert")
    from transformers import BertConfig

    from radassist.quality.chexbert import _offline_labeler_class

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "small", "left", "pleural", "effusion", "no", "pneumothorax", "."]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    config = BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )
    config.to_json_file(str(folder / "config.json"))
    torch.manual_seed(0)
    model = _offline_labeler_class()(config)
    want: dict[str, Label] = {}
    with torch.no_grad():
        for index, head in enumerate(model.linear_heads):
            cls = index % head.out_features
            head.weight.zero_()
            head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(cls), head.out_features).float() * 10)
            want[HEAD_ORDER[index]] = CLASS_LABELS[cls]
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model_state_dict": state, "epoch": 3}, folder / "chexbert.pth")
    return want


def test_no_path_means_rule_labeler() -> None:
    assert missing_files(None) == ("chexbert.pth", "config.json", "vocab.txt")
    scorer = Scorer(QualitySettings())
    assert scorer.compare(REPORT, REPORT, "cxr").labeler == "rule"


def test_weights_absent_switches_to_the_rule_labeler(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    caplog.set_level(logging.WARNING, logger="radassist.quality")
    pair = Scorer(QualitySettings(chexbert_path=tmp_path)).compare(REPORT, REPORT, "cxr")
    assert pair.labeler == "rule"
    assert "chexbert.pth" in caplog.text and "config.json" in caplog.text and "rule labeler" in caplog.text
    assert "effusion" not in caplog.text.lower()  # report text never logged


def test_weights_present_use_chexbert(tmp_path: Path) -> None:
    want = write_tiny_chexbert(tmp_path)
    labeler = load_chexbert(tmp_path)
    assert labeler is not None
    got = labeler.labels(REPORT)
    assert got == want
    # CheXbert's classes: 0 blank, 1 positive, 2 negative, 3 uncertain; No Finding: 0 blank, 1 positive.
    assert [got[name] for name in HEAD_ORDER[:4]] == [Label.ABSENT, Label.POSITIVE, Label.NEGATIVE, Label.UNCERTAIN]
    assert got["No Finding"] == Label.POSITIVE  # head 13: class 13 % 2 = 1
    assert labeler.labels("") == want  # an empty report is [CLS] [SEP]
    pair = Scorer(QualitySettings(chexbert_path=tmp_path)).compare(REPORT, "No effusion.", "cxr")
    assert pair.labeler == "chexbert"
    assert {r.finding: r.draft for r in pair.findings} == want
    # Other profiles and critical findings outside CheXpert stay with the rule labeler.
    assert Scorer(QualitySettings(chexbert_path=tmp_path)).compare(REPORT, REPORT, "ct_head").labeler == "rule"


def test_files_present_but_package_missing_means_rule_labeler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("chexbert.pth", "config.json", "vocab.txt"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setitem(sys.modules, "f1chexbert", None)
    caplog.set_level(logging.WARNING, logger="radassist.quality")
    assert load_chexbert(tmp_path) is None
    assert "f1chexbert is not installed" in caplog.text
    assert Scorer(QualitySettings(chexbert_path=tmp_path)).compare(REPORT, REPORT, "cxr").labeler == "rule"


def test_a_file_that_is_no_chexbert_checkpoint_is_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    write_tiny_chexbert(tmp_path)
    torch.save({"model_state_dict": {}}, tmp_path / "chexbert.pth")
    with pytest.raises(ValueError, match="not a CheXbert checkpoint"):
        load_chexbert(tmp_path)
