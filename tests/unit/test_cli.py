"""The ``radassist`` command as an administrator uses it: schema, config check, refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def radassist(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "radassist", *args], capture_output=True, text=True,
                          env=environ, timeout=120, check=False)


def test_db_upgrade_creates_a_schema_that_matches_the_tables(database_url: str, tmp_path: Path) -> None:
    env = {"RADASSIST_DATABASE_URL": database_url, "RADASSIST_STORAGE_PATH": str(tmp_path)}
    upgrade = radassist("db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    check = radassist("db", "check", env=env)
    assert check.returncode == 0, check.stderr
    assert "match" in check.stdout


def test_config_check_masks_passwords(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[database]\nurl = "postgresql+psycopg://radassist:s3cret@db/radassist"\n'
                      '[queue]\nbroker_url = "amqp://mq:hunter2@mq//"\n')
    result = radassist("config", "check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout and "hunter2" not in result.stdout
    assert "radassist:***@db" in result.stdout and "mq:***@mq" in result.stdout


def test_a_bad_config_stops_with_the_setting_named(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[dicom]\nport = 70000\n")
    result = radassist("listener", "--config", str(config))
    assert result.returncode == 2
    assert "dicom.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[dicom]\nae_title = "FILE"\n')
    result = radassist("config", "check", "--config", str(config), env={"RADASSIST_DICOM_AE_TITLE": "ENV"})
    assert '"ae_title": "ENV"' in result.stdout
