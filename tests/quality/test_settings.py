"""The [quality] settings: site vocabularies per profile, critical findings, validation, and the import cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from radassist.config import load_settings
from radassist.config.quality import QualitySettings
from radassist.quality import Label, compare_pair
from radassist.quality.vocabulary import inflections, vocabulary_for

SITE_TOML = """
[quality]
critical_findings = ["Intracranial Haemorrhage", "Midline Shift"]

[[quality.vocabularies]]
name = "head-ct"
profiles = ["ct_head"]
normal_finding = "Normal"

[[quality.vocabularies.findings]]
name = "Intracranial Haemorrhage"

[[quality.vocabularies.findings]]
name = "Infarct"
synonyms = ["infarct", "infarction", "ischaemic change"]

[[quality.vocabularies.findings]]
name = "Midline Shift"
synonyms = ["midline shift"]
"""


@pytest.fixture
def site(tmp_path: Path) -> QualitySettings:
    path = tmp_path / "config.toml"
    path.write_text(SITE_TOML)
    return load_settings(path, environ={}).quality


def test_site_vocabulary_from_toml(site: QualitySettings) -> None:
    vocabulary = vocabulary_for("ct_head", site)
    assert vocabulary.name == "head-ct"
    assert vocabulary.finding_names == ("Normal", "Intracranial Haemorrhage", "Infarct", "Midline Shift")
    assert vocabulary.critical_names == ("Intracranial Haemorrhage", "Midline Shift")
    haemorrhage = vocabulary.findings[0]
    assert "subdural haematoma" in haemorrhage.mentions  # no synonyms given: the built-in ones
    assert vocabulary_for("cxr", site).name == "chexpert"
    assert vocabulary_for("mammography", site).name == "none"


def test_site_vocabulary_scores_pairs(site: QualitySettings) -> None:
    pair = compare_pair(
        "No acute intracranial haemorrhage. Old left infarct.",
        "Acute right subdural haematoma with 4 mm midline shift. Old left infarct.",
        "ct_head",
        site,
    )
    rows = {r.finding: (r.draft, r.final) for r in pair.findings}
    assert rows == {
        "Normal": (Label.ABSENT, Label.ABSENT),
        "Intracranial Haemorrhage": (Label.NEGATIVE, Label.POSITIVE),
        "Infarct": (Label.POSITIVE, Label.POSITIVE),
        "Midline Shift": (Label.ABSENT, Label.POSITIVE),
    }
    assert pair.critical_misses == ("Intracranial Haemorrhage", "Midline Shift")
    assert pair.finding_f1 == pytest.approx(2 / 4)  # TP 1, FN 2


def test_empty_chexbert_path_from_the_environment_means_none(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"RADASSIST_QUALITY_CHEXBERT_PATH": ""})
    assert settings.quality.chexbert_path is None
    folder = load_settings(None, environ={"RADASSIST_QUALITY_CHEXBERT_PATH": str(tmp_path)}).quality.chexbert_path
    assert folder == tmp_path


def test_a_profile_in_two_vocabularies_is_refused() -> None:
    finding = {"name": "Mass"}
    with pytest.raises(ValidationError, match="more than one quality vocabulary"):
        QualitySettings.model_validate(
            {"vocabularies": [
                {"name": "a", "profiles": ["mammography"], "findings": [finding]},
                {"name": "b", "profiles": ["mammography"], "findings": [finding]},
            ]}
        )
    with pytest.raises(ValidationError, match="finding names must be unique"):
        QualitySettings.model_validate(
            {"vocabularies": [{"name": "a", "profiles": ["x"], "findings": [finding, finding]}]}
        )


def test_inflections() -> None:
    assert inflections("Opacity") == ("opacity", "opacities")
    assert inflections("pleural effusion") == ("pleural effusion", "pleural effusions")
    assert inflections("pneumothorax") == ("pneumothorax",)
    assert inflections("heart is enlarged")[:3] == ("heart is enlarged", "heart is mildly enlarged", "heart is moderately enlarged")


def test_summaries_import_without_spacy_or_torch() -> None:
    code = (
        "import sys, radassist.quality, radassist.quality.bootstrap, radassist.quality.drift;"
        "print(sorted(m for m in ('spacy', 'torch', 'jiwer', 'sacrebleu') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SHADOW_TOML = """
[[pipelines]]
ae_title = "CT_AI"
model_name = "/models/ct"

[quality]
age_bands = [18, 65]

[[quality.shadows]]
model_name = "/models/candidate"
pipelines = ["CT_AI"]
"""


def test_shadows_and_age_bands_from_the_file(tmp_path: Path) -> None:
    from radassist.pipelines import pipeline_for
    from radassist.quality.slices import age_band, band_names

    path = tmp_path / "radassist.toml"
    path.write_text(SHADOW_TOML)
    settings = load_settings(path, environ={})
    assert pipeline_for(settings, "CT_AI").shadow_models == ("/models/candidate",)
    assert pipeline_for(settings, "RADASSIST").shadow_models == ()
    assert band_names(settings.quality.age_bands) == ("0-17", "18-64", "65+")
    assert [age_band(v, settings.quality.age_bands) for v in ("017Y", "18 years", "064Y", "065Y", "006M", "x")] == [
        "0-17", "18-64", "18-64", "65+", "0-17", None]
    for bands in ((40, 18), (0, 18), (18, 18)):
        with pytest.raises(ValidationError, match="age_bands"):
            QualitySettings(age_bands=bands)
