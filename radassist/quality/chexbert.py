"""CheXbert: the 14 CheXpert observations labelled by the BERT labeler of Smit et al. (2020), when present.

CheXbert is used only when the site has put its files in ``[quality] chexbert_path`` and installed
the ``chexbert`` extra (``f1chexbert``): ``chexbert.pth`` (the checkpoint scorers of report generation
use), and ``config.json`` and ``vocab.txt`` of bert-base-uncased.  Nothing is downloaded: with a
file missing or the package absent, :func:`load_chexbert` says why in the log and returns ``None``,
and the rule labeler labels the study instead (each pair records which labeler it got).

f1chexbert builds its model from the hub (``AutoConfig.from_pretrained("bert-base-uncased")``,
``hf_hub_download``) and tokenizes with an API transformers 5 no longer has.  So only its network
class and forward pass are used here: :class:`_OfflineLabeler` subclasses its ``bert_labeler`` with a
constructor that takes the local config, and the text is tokenized with the tokenizer's own call
(``[CLS]`` text ``[SEP]``, cut to 512 tokens, as f1chexbert does).

CheXbert's heads give 0 blank, 1 positive, 2 negative, 3 uncertain for 13 observations and 0 blank,
1 positive for No Finding; they map to absent / positive / negative / uncertain.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from radassist.quality.labeler import ReportLabels, RuleLabeler, side_of_mentions
from radassist.quality.labels import Label

logger = logging.getLogger(__name__)

WEIGHTS = "chexbert.pth"
CONFIG = "config.json"
VOCAB = "vocab.txt"
REQUIRED_FILES = (WEIGHTS, CONFIG, VOCAB)

HEAD_ORDER: tuple[str, ...] = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation",
    "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices", "No Finding",
)
CLASS_LABELS = (Label.ABSENT, Label.POSITIVE, Label.NEGATIVE, Label.UNCERTAIN)
MAX_TOKENS = 512


def missing_files(path: Path | None) -> tuple[str, ...]:
    """The CheXbert files not found in ``path`` (all of them when no path is configured)."""
    if path is None:
        return REQUIRED_FILES
    return tuple(name for name in REQUIRED_FILES if not (path / name).is_file())


def _import_f1chexbert() -> Any:
    """f1chexbert's model module; its import-time ``warnings.filterwarnings("ignore")`` is undone."""
    with warnings.catch_warnings():
        from f1chexbert import f1chexbert

    return f1chexbert


def _offline_labeler_class() -> type[Any]:
    import torch.nn as nn
    from transformers import BertModel

    bert_labeler: Any = _import_f1chexbert().bert_labeler

    class _OfflineLabeler(bert_labeler):  # type: ignore[misc]
        """f1chexbert's network, built from a local BERT config instead of the hub."""

        def __init__(self, config: Any) -> None:
            nn.Module.__init__(self)
            self.bert = BertModel(config)
            self.dropout = nn.Dropout(0.1)
            heads = [nn.Linear(config.hidden_size, 4, bias=True) for _ in range(13)]
            self.linear_heads = nn.ModuleList([*heads, nn.Linear(config.hidden_size, 2, bias=True)])

    return _OfflineLabeler


class ChexbertLabeler:
    """CheXbert on CPU (or ``device``), loaded once from the files in ``path``."""

    name = "chexbert"

    def __init__(self, path: Path, device: str = "cpu") -> None:
        import torch
        from transformers import BertConfig, BertTokenizer

        self._torch = torch
        self.device = torch.device(device)
        config = BertConfig.from_json_file(str(path / CONFIG))
        self.tokenizer = BertTokenizer(vocab_file=str(path / VOCAB))
        self.max_tokens = min(MAX_TOKENS, int(config.max_position_embeddings))
        model = _offline_labeler_class()(config)
        checkpoint = torch.load(path / WEIGHTS, map_location=self.device, weights_only=True)
        state = checkpoint.get("model_state_dict", checkpoint)
        result = model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=False)
        if result.missing_keys:
            raise ValueError(f"{path / WEIGHTS}: not a CheXbert checkpoint ({len(result.missing_keys)} weights missing)")
        self.model = model.to(self.device).eval()

    def labels(self, text: str) -> dict[str, Label]:
        """The label of each of the 14 CheXpert observations in ``text`` (a report body)."""
        torch = self._torch
        clean = " ".join(text.split())
        ids = self.tokenizer(clean, truncation=True, max_length=self.max_tokens)["input_ids"]
        batch = torch.tensor([ids], dtype=torch.long, device=self.device)
        mask = torch.ones_like(batch, dtype=torch.float)
        with torch.inference_mode():
            heads = self.model(batch, mask)
        classes = [int(head.argmax(dim=1).item()) for head in heads]
        return {name: CLASS_LABELS[c] for name, c in zip(HEAD_ORDER, classes, strict=True)}


def load_chexbert(path: Path | None, device: str = "cpu") -> ChexbertLabeler | None:
    """CheXbert from ``path`` when its files and package are there; else ``None`` (the rule labeler is used)."""
    if path is None:
        return None
    missing = missing_files(path)
    if missing:
        logger.warning("CheXbert files missing in %s (%s): the rule labeler labels findings", path, ", ".join(missing))
        return None
    try:
        _import_f1chexbert()
    except ImportError:
        logger.warning("CheXbert files present but f1chexbert is not installed (radassist[chexbert]): rule labeler")
        return None
    return ChexbertLabeler(path, device)


class ChexbertReportLabeler:
    """The CheXpert vocabulary labelled by CheXbert; sides and critical findings outside it by the rule labeler."""

    name = "chexbert"

    def __init__(self, rule: RuleLabeler, chexbert: ChexbertLabeler) -> None:
        self.rule = rule
        self.chexbert = chexbert

    def label(self, text: str) -> ReportLabels:
        ruled = self.rule.label(text)
        labels = {**ruled.labels, **self.chexbert.labels(text)}
        sides = {
            name: ruled.sides.get(name) or side_of_mentions(m for m in ruled.mentions if m.finding == name)
            for name, label in labels.items()
            if label.counts_positive
        }
        return ReportLabels(labels, sides, ruled.mentions)
