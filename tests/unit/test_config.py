"""Settings: defaults, file, environment overrides, refusals, and the example file kept in sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from radassist.config import load_settings, mask_url
from radassist.config.example import render_example
from radassist.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_embedded_sqlite_and_sqlite_broker() -> None:
    settings = load_settings(environ={})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("radassist.sqlite3")
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert settings.model.name == "google/medgemma-1.5-4b-it"
    assert settings.hl7.result_status == "R" and not settings.hl7.enabled
    assert settings.destinations == ()


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[dicom]\nae_title = "FROMFILE"\nport = 104\n[hl7]\nhost = "ris"\n'
        '[[destinations]]\nname = "pacs"\nae_title = "PACS"\nhost = "10.0.0.5"\nport = 104\n'
    )
    settings = load_settings(config, environ={"RADASSIST_DICOM_PORT": "11113", "RADASSIST_MODEL_DEVICE": "cpu"})
    assert settings.dicom.ae_title == "FROMFILE"
    assert settings.dicom.port == 11113
    assert settings.model.device == "cpu"
    assert settings.hl7.enabled
    assert settings.destination("pacs").kind == "dicom"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('[dicom]\nae_title = "THIS_TITLE_IS_TOO_LONG"\n', "dicom.ae_title"),
        ('[dicom]\nae_title = "BACK\\\\SLASH"\n', "dicom.ae_title"),
        ("[dicom]\nport = 0\n", "dicom.port"),
        ("[dicom]\nportt = 1\n", "dicom.portt"),
        ('[hl7]\nresult_status = "F"\n', "hl7.result_status"),
        ("[dicom\n", "not valid TOML"),
        ('[[destinations]]\nname = "a"\nae_title = "A"\nhost = "h"\nport = 1\n'
         '[[destinations]]\nname = "a"\nae_title = "B"\nhost = "h"\nport = 2\n', "unique"),
    ],
)
def test_bad_config_is_refused_with_the_setting_named(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert fragment in info.value.message
    assert info.value.code == "config.invalid"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ValidationError):
        settings.dicom.port = 1  # type: ignore[misc]


def test_example_file_documents_every_setting_and_is_current() -> None:
    example = (REPO / "config.example.toml").read_text()
    assert example == render_example(), "regenerate with: radassist config example > config.example.toml"
    load_settings(REPO / "config.example.toml", environ={})
    for key in ("ae_title", "host", "port", "study_quiet_seconds", "path", "url", "broker_url", "name",
                "device", "sending_application", "sending_facility", "receiving_application",
                "receiving_facility", "result_status"):
        assert f"{key} = " in example, key


def test_broker_password_is_masked() -> None:
    assert mask_url("amqp://user:secret@host:5672//") == "amqp://user:***@host:5672//"
    assert mask_url("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_list_settings_come_from_the_environment_as_json() -> None:
    settings = load_settings(environ={
        "RADASSIST_PIPELINES": '[{"ae_title": "CT_AI", "study_quiet_seconds": 30}]',
        "RADASSIST_DICOM_ALLOWED_CALLERS": '[{"ae_title": "PACS_ROUTER", "network": "10.1.2.0/24"}]',
    })
    assert [(p.ae_title, p.study_quiet_seconds) for p in settings.pipelines] == [("CT_AI", 30.0)]
    assert [(c.ae_title, c.network) for c in settings.dicom.allowed_callers] == [("PACS_ROUTER", "10.1.2.0/24")]


def test_a_text_setting_from_the_environment_is_never_read_as_json() -> None:
    key = '{"looks": "like json"} but is the secret key of 48 characters'
    settings = load_settings(environ={"RADASSIST_WEB_SECRET_KEY": key, "RADASSIST_MODEL_NAME": "[not-a-list]"})
    assert settings.web.secret_key.get_secret_value() == key
    assert settings.model.name == "[not-a-list]"
