"""``[[prior_sources]]`` (one model per kind) and ``[priors]`` (time limit, rules per profile) as loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radassist.config import load_settings
from radassist.config.priors import DicomPriorSource, DicomwebPriorSource, OrthancPriorSource
from radassist.errors import ConfigError

CONFIG = """\
[dicom]
ae_title = "RADASSIST"

[[prior_sources]]
name = "pacs"
ae_title = "PACS"
host = "10.0.0.5"
port = 104
retrieve = "move"

[[prior_sources]]
kind = "dicomweb"
name = "vna"
url = "https://vna.example.org/dicom-web"
bearer_token = "s3cret-token"

[[prior_sources]]
kind = "orthanc"
name = "orthanc"
url = "http://admin:pw@orthanc:8042"
username = "radassist"
password_file = "{password_file}"

[priors]
time_limit_seconds = 12.5

[[priors.rules]]
profile = "cxr"
modalities = ["cr", "dx"]
views = ["pa", "ap"]
within_years = 3
most_recent = 2

[[priors.rules]]
most_recent = 1
"""


def test_sources_of_each_kind_and_rules_per_profile(tmp_path: Path) -> None:
    secret = tmp_path / "orthanc-password"
    secret.write_text("from-a-file\n")
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(password_file=secret))
    settings = load_settings(config, environ={})

    pacs, vna, orthanc = settings.prior_sources
    assert isinstance(pacs, DicomPriorSource) and pacs.retrieve == "move" and pacs.move_destination is None
    assert isinstance(vna, DicomwebPriorSource) and vna.bearer_token.get_secret_value() == "s3cret-token"
    assert isinstance(orthanc, OrthancPriorSource) and orthanc.password.get_secret_value() == "from-a-file"
    assert settings.priors.time_limit_seconds == 12.5

    cxr = settings.priors.rule_for("cxr")
    assert cxr.modalities == ("CR", "DX") and cxr.views == ("PA", "AP") and cxr.most_recent == 2
    assert settings.priors.rule_for("ct_head").profile == "" and settings.priors.rule_for(None).most_recent == 1

    shown = json.dumps(settings.redacted())
    assert "s3cret-token" not in shown and "from-a-file" not in shown and "admin:pw@" not in shown
    assert "http://admin:***@orthanc:8042" in shown


def test_the_environment_replaces_the_sources_as_a_whole() -> None:
    sources = [{"name": "env-pacs", "ae_title": "PACS", "host": "pacs", "port": 11112},
               {"kind": "orthanc", "name": "env-orthanc", "url": "http://orthanc:8042"}]
    settings = load_settings(environ={"RADASSIST_PRIOR_SOURCES": json.dumps(sources),
                                      "RADASSIST_PRIORS_TIME_LIMIT_SECONDS": "5"})
    assert [s.name for s in settings.prior_sources] == ["env-pacs", "env-orthanc"]
    assert settings.prior_sources[0].kind == "dicom" and settings.priors.time_limit_seconds == 5


def test_no_sources_by_default() -> None:
    settings = load_settings(environ={})
    assert settings.prior_sources == () and settings.priors.rules == ()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('[[prior_sources]]\nname = "a"\nae_title = "A"\nhost = "h"\nport = 1\n'
         '[[prior_sources]]\nname = "a"\nae_title = "B"\nhost = "h"\nport = 2\n', "unique"),
        ('[[prior_sources]]\nname = "a"\nae_title = "BACK\\\\SLASH"\nhost = "h"\nport = 1\n', "prior_sources"),
        ('[[prior_sources]]\nname = "a"\nae_title = "A"\nhost = "h"\nport = 1\nmove_destination = "WAY_TOO_LONG_TITLE"\n',
         "move_destination"),
        ('[[prior_sources]]\nkind = "ftp"\nname = "a"\n', "prior_sources"),
        ('[priors]\ntime_limit_seconds = 0\n', "priors.time_limit_seconds"),
        ('[[priors.rules]]\nseries_description_pattern = "(unclosed"\n', "series_description_pattern"),
        ('[[priors.rules]]\nmost_recent = 11\n', "most_recent"),
    ],
)
def test_bad_prior_settings_are_refused_with_the_setting_named(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert fragment in info.value.message
